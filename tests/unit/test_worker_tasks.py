"""The stage-task runner's decisions, with a fake job store and a fake task (pure logic: the
real Redis, workers and cluster are exercised in tests/integration/test_queue.py)."""

from __future__ import annotations

from typing import Any

import pytest
from celery.exceptions import Reject, Retry

from workers import tasks
from workers.holder import holder
from xlidx.documents import Prepared, Record
from xlidx.errors import BackendError, QueueError
from xlidx.pipeline.wire import encode_prepared


class FakeStore:
    def __init__(self, deliveries: int = 1, down: int = 0) -> None:
        self.deliveries, self.down = deliveries, down
        self.finished: list[tuple[int, dict[str, Any], list[Any]]] = []
        self.forgotten: list[list[str]] = []

    def count_delivery(self, job: str, batch: int, stage: str, forget: Any = ()) -> int:
        self.forgotten.append(list(forget))
        if self.down:
            self.down -= 1
            raise QueueError("redis is down")
        return self.deliveries

    def finish_batch(self, job: str, batch: int, result: Any, letters: Any, *, index: str) -> bool:
        self.finished.append((batch, dict(result), list(letters)))
        return True


class FakeRequest:
    retries = 0


class FakeTask:
    stage = "embed"
    max_retries = 3

    def __init__(self, retries: int = 0, publish_fails: bool = False) -> None:
        self.request = FakeRequest()
        self.request.retries = retries
        self.publish_fails = publish_fails
        self.countdowns: list[float] = []

    def retry(self, exc: BaseException, countdown: float) -> Retry:
        if self.publish_fails:
            raise Reject(exc, requeue=False)
        self.countdowns.append(countdown)
        return Retry(exc=exc)


def _payload(n: int = 2) -> dict[str, Any]:
    prepared = [
        encode_prepared(Prepared(Record(f"d{i}", {"body": "text"}, {}, None, f"f:{i}", "h", "c")))
        for i in range(n)
    ]
    return {"job": "j", "batch": 4, "options": {"index": "news"}, "prepared": prepared,
            "dead": [], "unchanged": 0, "untranslated": {}}  # fmt: skip


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(holder, "_store", fake)
    monkeypatch.setattr(tasks.time, "sleep", lambda _s: None)
    return fake


def test_a_stage_started_too_often_is_dead_lettered(store: FakeStore) -> None:
    store.deliveries = tasks.MAX_DELIVERIES + 1
    out = tasks.run(FakeTask(), _payload(), lambda p: pytest.fail("must not run"))  # type: ignore[arg-type]
    assert out["finished"] and out["prepared"] == []
    (batch, result, letters) = store.finished[0]
    assert batch == 4 and result["dead_lettered"] == 2
    assert {d.id for d in letters} == {"d0", "d1"}
    assert all(d.stage == "embed" and "started 5 times" in d.reason for d in letters)


def test_redis_down_waits_and_goes_on(store: FakeStore) -> None:
    store.down = 2
    out = tasks.run(FakeTask(), _payload(), lambda p: {**p, "ok": True})  # type: ignore[arg-type]
    assert out["ok"] and store.finished == []


def test_a_start_forgets_the_starts_of_the_stage_that_handed_the_batch_on(
    store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else a batch recovered five times because ``embed`` hangs would be dead-lettered at
    ``translate``, which finished every time. Every retry number of the stage before goes."""
    from xlidx.jobs.settings import QueueSettings

    settings = QueueSettings(max_retries=2)
    monkeypatch.setattr(holder, "queue_settings", lambda: settings)
    tasks.run(FakeTask(), _payload(), lambda p: p)  # type: ignore[arg-type]
    assert store.forgotten == [["translate:0", "translate:1", "translate:2"]]
    assert tasks._handed_on("translate") == []
    assert tasks._handed_on("write") == ["embed:0", "embed:1", "embed:2"]


def test_transient_cluster_errors_retry_with_backoff_then_fail(store: FakeStore) -> None:
    def down(_p: dict[str, Any]) -> dict[str, Any]:
        raise BackendError("busy", status=503)

    task = FakeTask(retries=1)
    with pytest.raises(Retry):
        tasks.run(task, _payload(), down)  # type: ignore[arg-type]
    assert 0 < task.countdowns[0] <= 2.0
    with pytest.raises(BackendError):  # retries used up: on_failure dead-letters the batch
        tasks.run(FakeTask(retries=3), _payload(), down)  # type: ignore[arg-type]


def test_a_retry_that_cannot_be_sent_requeues(store: FakeStore) -> None:
    def down(_p: dict[str, Any]) -> dict[str, Any]:
        raise BackendError("busy", status=429)

    with pytest.raises(Reject) as info:
        tasks.run(FakeTask(publish_fails=True), _payload(), down)  # type: ignore[arg-type]
    assert info.value.requeue


def test_a_bug_fails_the_task_and_on_failure_dead_letters_every_record(store: FakeStore) -> None:
    def bug(_p: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("x")

    payload = _payload()
    with pytest.raises(KeyError):
        tasks.run(FakeTask(), payload, bug)  # type: ignore[arg-type]
    tasks.embed.on_failure(KeyError("x"), "id", (payload,), {}, None)
    (_batch, _result, letters) = store.finished[0]
    assert [d.reason for d in letters] == ["unexpected KeyError: 'x'"] * 2


def test_the_soft_limit_inside_a_client_that_catches_everything_still_ends_the_task(
    store: FakeStore,
) -> None:
    """Cluster clients catch ``Exception`` around a request: the soft limit, signalled in the
    middle of one, must still end the task (and dead-letter its batch), not become a retry."""
    import os
    import signal

    from celery.exceptions import SoftTimeLimitExceeded

    def stuck_in_a_request(_p: dict[str, Any]) -> dict[str, Any]:
        try:
            os.kill(os.getpid(), signal.SIGUSR1)  # what billiard's pool sends at the soft limit
            signal.sigtimedwait([], 0.01)  # let the handler run here
        except Exception as exc:  # what opensearch-py and elastic-transport do
            raise BackendError(f"connection failed: {exc!r}", status=None) from exc
        return _p

    previous = signal.getsignal(signal.SIGUSR1)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            tasks.run(FakeTask(), _payload(), stuck_in_a_request)  # type: ignore[arg-type]
        # outside a stage the signal raises Celery's own exception, as billiard's handler does
        with pytest.raises(SoftTimeLimitExceeded):
            os.kill(os.getpid(), signal.SIGUSR1)
            signal.sigtimedwait([], 0.01)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert "soft time limit" in tasks.failure_reason(SoftTimeLimitExceeded(), 3)
