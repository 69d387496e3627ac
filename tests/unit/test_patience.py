"""The retry policy of batch jobs: a time budget of transient failures, reported while waiting."""

from __future__ import annotations

import itertools

import pytest

from xlidx.config import ConfigError, format_duration, parse_duration
from xlidx.errors import AuthenticationFailed, BackendError, ConnectionFailed
from xlidx.pipeline.patience import Patience, is_transient


class Clock:
    """A fake ``time.monotonic`` / ``sleep`` pair: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("time.monotonic", c.monotonic)
    return c


def failing(times: int, exc: BaseException) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "ok"

    return calls, fn


def test_transient_failures_are_waited_out_and_reported(clock: Clock) -> None:
    seen: list[float | None] = []
    patience = Patience(budget=60, on_wait=seen.append, sleep=clock.sleep)
    calls, fn = failing(4, ConnectionFailed("cannot connect"))
    assert patience.call("write", fn) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 5
    waited = [s for s in seen if s is not None]
    assert waited == sorted(waited) and waited[-1] > 0  # seconds waited, growing
    assert seen[-1] is None  # the wait is over


def test_budget_spent_raises_the_last_error_saying_how_long(clock: Clock) -> None:
    patience = Patience(budget=30, sleep=clock.sleep)
    calls, fn = failing(10_000, BackendError("HTTP 503", status=503))
    with pytest.raises(BackendError, match=r"HTTP 503 \(still failing after waiting 30s") as e:
        patience.call("write", fn)  # type: ignore[arg-type]
    assert e.value.status == 503
    assert 30 <= clock.now - 1000.0 < 45  # no longer than the budget and one last backoff
    assert 3 < len(calls) < 30


def test_attempts_bound_the_retries_of_a_worker(clock: Clock) -> None:
    patience = Patience(attempts=2, sleep=clock.sleep)
    calls, fn = failing(10, ConnectionFailed("cannot connect"))
    with pytest.raises(ConnectionFailed, match=r"^cannot connect$"):
        patience.call("write", fn)  # type: ignore[arg-type]
    assert len(calls) == 3


@pytest.mark.parametrize(
    "exc",
    [
        BackendError("bad request", status=400),
        AuthenticationFailed("no", status=401),
        BackendError("mapping", status=404),
    ],
)
def test_permanent_failures_are_not_retried(clock: Clock, exc: BackendError) -> None:
    calls, fn = failing(1, exc)
    with pytest.raises(type(exc)):
        Patience(budget=60, sleep=clock.sleep).call("x", fn)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_zero_budget_fails_at_once(clock: Clock) -> None:
    calls, fn = failing(1, ConnectionFailed("down"))
    with pytest.raises(ConnectionFailed):
        Patience(budget=0, sleep=clock.sleep).call("x", fn)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_what_counts_as_transient() -> None:
    assert is_transient(ConnectionFailed("refused"))
    for status in (429, 502, 503, 504):
        assert is_transient(BackendError("x", status=status))
    flood = {"type": "cluster_block_exception", "reason": "index read-only / allow delete (api)"}
    assert is_transient(BackendError("blocked", status=403, details=flood))
    assert not is_transient(AuthenticationFailed("denied", status=403))
    assert not is_transient(BackendError("x", status=400))
    assert not is_transient(ValueError("x"))
    # one rule for writes and queries: a 500 is a failure the same request trips again...
    assert not is_transient(BackendError("null_pointer_exception", status=500))
    # ...unless it names a node or shard copy that just went away
    gone = {"error": {"root_cause": [{"type": "node_disconnected_exception"}]}}
    assert is_transient(BackendError("failed", status=500, details=gone))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("10min", 600.0), ("2h", 7200.0),
     ("500ms", 0.5), ("0", 0.0), (45, 45.0), (" 5 M ", 300.0)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration("--retry-for", text) == seconds


@pytest.mark.parametrize("bad", ["", "ten minutes", "-5s", "5d", "1e3", True])
def test_bad_durations_are_one_line_errors(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^--retry-for must be"):
        parse_duration("--retry-for", bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (2.5, 59, 60, 90, 600, 3600, 3725)] == [
        "2.5s", "59s", "1m", "1m30s", "10m", "1h", "1h2m5s",
    ]  # fmt: skip


def test_never_busy_waits_with_a_fake_sleep() -> None:
    """The ticking sleep counts the time it was asked to sleep, not the wall clock."""
    slept: list[float] = []
    counter = itertools.count()
    calls, fn = failing(3, ConnectionFailed("down"))
    Patience(budget=600, sleep=slept.append, on_wait=lambda _s: next(counter)).call("x", fn)  # type: ignore[arg-type]
    assert calls and all(0 < s <= 1.0 for s in slept)


def test_a_stop_ends_the_wait_at_once(clock: Clock) -> None:
    from xlidx.pipeline.patience import StopWaiting

    stopping = {"now": False}

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        stopping["now"] = True  # the signal comes during the first wait

    calls, fn = failing(10_000, ConnectionFailed("down"))
    patience = Patience(budget=600, sleep=sleep, should_stop=lambda: stopping["now"])
    with pytest.raises(StopWaiting):
        patience.call("write", fn)  # type: ignore[arg-type]
    assert len(calls) == 1 and clock.now - 1000.0 <= 1.0


def test_documents_turned_away_until_the_budget_is_spent_become_dead_letters(
    clock: Clock,
) -> None:
    """Per-document 429s past the time budget: dead letters, never an exception."""
    from collections.abc import Iterator, Mapping
    from typing import Any

    from xlidx.indices.writer import BulkWriter

    class Busy:
        def bulk(self, actions: Any, **_kw: Any) -> Iterator[tuple[bool, Mapping[str, Any]]]:
            for a in actions:
                yield False, {"index": {"_id": a["_id"], "status": 429, "error": "busy"}}

    writer = BulkWriter(Busy(), patience=Patience(budget=20, sleep=clock.sleep))  # type: ignore[arg-type]
    res = writer.write_actions([{"_id": "a", "_source": {}}, {"_id": "b", "_source": {}}])
    assert res.indexed == 0 and res.transient == 2 and [d.id for d in res.dead] == ["a", "b"]
    assert "HTTP 429" in res.dead[0].reason and res.retries > 2
