"""Pure parts of the queues: wire format, job options, settings, retry delays, worker defaults,
the Celery configuration's delivery guarantees, and error classification."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xlidx.documents import DeadLetter, Prepared, Record
from xlidx.errors import BackendError, ConfigError, ConnectionFailed, QueueError, TLSFailed
from xlidx.jobs.options import JobOptions
from xlidx.jobs.settings import QueueSettings, retry_delay
from xlidx.jobs.store import letter_key
from xlidx.pipeline.options import IngestOptions
from xlidx.pipeline.summary import QueuedSummary
from xlidx.pipeline.wire import decode_prepared, encode_prepared


def _prepared() -> Prepared:
    rec = Record(
        id="a",
        texts={"title": "Bonjour", "body": "Le monde."},
        extra={"year": 2024, "tags": ["x"]},
        lang=None,
        origin="docs.jsonl:3",
        content_hash="h" * 64,
        content_id="c" * 64,
    )
    return Prepared(
        rec,
        field_langs={"title": "fr", "body": "fr"},
        translations={"body": {"en": "The world."}},
        passages=["Bonjour\n\nLe monde."],
        vectors=[[0.5, -0.25, 0.125], [1.0, 0.0, -1.0]],
    )


def test_prepared_round_trips_through_json() -> None:
    import json

    p = _prepared()
    back = decode_prepared(json.loads(json.dumps(encode_prepared(p))))
    assert back.record == p.record
    assert back.field_langs == p.field_langs
    assert back.translations == p.translations
    assert back.vectors == p.vectors  # exact: these values are float32-representable
    assert back.lang == "fr"


def test_vectors_travel_as_float32() -> None:
    p = _prepared()
    p.vectors = [[0.1, 0.2, 0.3]]
    back = decode_prepared(encode_prepared(p))
    assert back.vectors[0] == pytest.approx([0.1, 0.2, 0.3], abs=1e-7)
    assert encode_prepared(Prepared(p.record))["vectors"] is None


def test_dead_letter_dict_round_trip() -> None:
    letter = DeadLetter("f:1", "write", "rejected", {"id": "a"}, "a")
    assert DeadLetter.from_dict(letter.to_dict()) == letter
    assert letter_key("job1", letter) == "job1:f:1:a"
    assert letter_key("job1", DeadLetter("f:2", "read", "bad", "{x")) == "job1:f:2:"


def test_job_options_round_trip() -> None:
    opts = JobOptions(
        IngestOptions(
            index="news", text_fields=("title", "body"), languages=("en", "fr"),
            translate_to=("en",),
        ),
        model="/models/e5",
        embedding={"model": "e5", "dimension": 384},
        fingerprint="f",
    )  # fmt: skip
    assert JobOptions.from_dict(opts.to_dict()) == opts


def test_queue_settings_defaults_and_derived_values() -> None:
    s = QueueSettings.from_env({})
    assert s.broker_url == s.state_url == s.result_backend == "redis://127.0.0.1:6379/0"
    assert s.time_limit + s.retry_backoff_max < s.visibility_timeout
    assert s.soft_time_limit < s.time_limit
    r = QueueSettings.from_env(
        {"XLIDX_BROKER_URL": "amqp://guest@rabbit//", "XLIDX_STATE_URL": "redis://r:6379/1"}
    )
    assert r.state_url == r.result_backend == "redis://r:6379/1"
    p = QueueSettings.from_env({"XLIDX_BROKER_URL": "redis://:s3cret@host:6379/0"})
    assert "s3cret" not in p.display_broker and "s3cret" not in p.display_state


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"XLIDX_BROKER_URL": "kafka://x"}, "must be a redis:// or amqp:// URL"),
        ({"XLIDX_BROKER_URL": "amqp://rabbit//"}, "set XLIDX_STATE_URL to a Redis URL"),
        ({"XLIDX_STATE_URL": "amqp://rabbit//"}, "XLIDX_STATE_URL must be a redis:// URL"),
        ({"XLIDX_VISIBILITY_TIMEOUT": "100"}, "must exceed the task time limit"),
        ({"XLIDX_TASK_TIME_LIMIT": "abc"}, "must be a number of seconds"),
        ({"XLIDX_TASK_TIME_LIMIT": "-5"}, "must be positive"),
        ({"XLIDX_TASK_SOFT_TIME_LIMIT": "2000"}, "soft time limit (2000s) must be below"),
        ({"XLIDX_TASK_MAX_RETRIES": "many"}, "must be a whole number"),
    ],
)
def test_queue_settings_refuse_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QueueSettings.from_env(env)


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    for attempt in range(12):
        d = retry_delay(attempt, cap=30.0)
        full = min(30.0, 2.0**attempt)
        assert full / 2 <= d <= full
    delays = {retry_delay(3, cap=30.0) for _ in range(20)}
    assert len(delays) > 1  # jitter spreads retries out


def test_celery_config_delivery_guarantees() -> None:
    from workers.app import ROUTES, celery_config

    s = QueueSettings.from_env({"XLIDX_VISIBILITY_TIMEOUT": "100", "XLIDX_TASK_TIME_LIMIT": "50",
                                "XLIDX_RETRY_BACKOFF_MAX": "20"})  # fmt: skip
    conf = celery_config(s)
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] == 100
    assert conf["task_time_limit"] == 50 and conf["task_soft_time_limit"] == 40
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    queues = {q.name: (q.exchange.name, q.routing_key) for q in conf["task_queues"]}
    assert queues == {q: (q, q) for q in ("translate", "embed", "write")}  # no fan-out
    assert ROUTES["xlidx.embed"]["queue"] == ROUTES["xlidx.describe_model"]["queue"] == "embed"


def test_worker_defaults_per_queue_set() -> None:
    from workers.run import parse_queues, worker_defaults

    assert worker_defaults(("embed",), 16) == (1, 1)
    assert worker_defaults(("translate", "embed", "write"), 16) == (1, 1)
    assert worker_defaults(("translate",), 16) == (16, 1)
    assert worker_defaults(("translate", "write"), 8) == (8, 1)
    assert worker_defaults(("write",), 16) == (4, 1)
    assert parse_queues(" embed, write ,embed") == ("embed", "write")
    with pytest.raises(ConfigError, match="unknown queue"):
        parse_queues("translate,gpu")
    with pytest.raises(ConfigError, match="none given"):
        parse_queues(" , ")


def test_transient_errors_are_retried_others_are_not() -> None:
    from workers.tasks import failure_reason, is_transient

    assert is_transient(ConnectionFailed("down"))
    assert is_transient(QueueError("redis down"))
    for status in (429, 502, 503, 504):
        assert is_transient(BackendError("busy", status=status))
    assert not is_transient(BackendError("internal error", status=500))  # xlidx/errors.py
    assert not is_transient(BackendError("bad request", status=400))
    assert not is_transient(BackendError("no status"))
    assert not is_transient(TLSFailed("bad cert"))
    assert not is_transient(ValueError("bug"))
    assert failure_reason(ConnectionFailed("down"), 5) == "still failing after 5 retries: down"
    assert failure_reason(KeyError("x"), 5) == "unexpected KeyError: 'x'"


def test_job_progress_is_finished_only_once_enqueued_and_done() -> None:
    p = QueuedSummary(job="j", enqueued=False, batches=0)
    assert not p.finished
    p.enqueued = True
    assert p.finished  # an empty job is done at once
    p.batches, p.batches_done, p.indexed, p.dead_lettered, p.invalid = 3, 2, 15, 3, 2
    assert not p.finished and p.docs_done == 16
    assert p.to_json()["dead_lettered"] == 3 and p.to_json()["state"] == "queued"


def test_recover_after_defaults_past_the_visibility_timeout() -> None:
    s = QueueSettings.from_env({"XLIDX_VISIBILITY_TIMEOUT": "100", "XLIDX_TASK_TIME_LIMIT": "50",
                                "XLIDX_RETRY_BACKOFF_MAX": "20"})  # fmt: skip
    assert s.recover_after == 220
    assert QueueSettings.from_env({"XLIDX_RECOVER_AFTER": "30"}).recover_after == 30


class _StuckStore:
    """A job with one batch whose message was lost: done only once it is sent again."""

    def __init__(self) -> None:
        self.resent = 0

    def progress(self, job: str) -> QueuedSummary:
        return QueuedSummary(
            job=job, enqueued=True, batches=2, batches_done=1 + min(1, self.resent)
        )


def test_follow_sends_unfinished_batches_again_after_a_stall() -> None:
    from xlidx.jobs.submit import follow

    store = _StuckStore()
    stalls: list[float] = []

    def recover() -> int:
        store.resent += 1
        return 1

    final = follow(
        store,  # type: ignore[arg-type]
        "j",
        recover=recover,
        recover_after=0.05,
        stall_after=0.02,
        on_stall=stalls.append,
        poll=0.01,
    )
    assert final.finished and store.resent == 1 and len(stalls) == 1


def test_follow_reports_a_vanished_job() -> None:
    from xlidx.jobs.submit import follow

    class Empty:
        def progress(self, job: str) -> None:
            return None

    with pytest.raises(QueueError, match="gone from the job store"):
        follow(Empty(), "j", poll=0.01)  # type: ignore[arg-type]


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, with no XLIDX_* settings but ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )


def test_importing_workers_builds_no_app_from_the_environment() -> None:
    res = _python(
        """
        import workers, workers.app, workers.holder, workers.tasks, xlidx.jobs.submit
        import xlidx.jobs.app
        from celery import _state

        assert xlidx.jobs.app._app is None and xlidx.jobs.app._settings is None
        assert not [a for a in _state._get_active_apps() if a.main == "xlidx"]
        try:
            workers.app.app
        except Exception as exc:  # the environment is read on first use, and only then
            print(type(exc).__name__, exc)
        """,
        XLIDX_BROKER_URL="kafka://bogus",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ConfigError XLIDX_BROKER_URL must be a redis:// or amqp:// URL")


def test_the_app_is_built_once_on_first_use_with_the_same_tasks_and_routes() -> None:
    res = _python(
        """
        from celery.app.utils import find_app
        import workers.app

        app = find_app("workers.app")  # what ``celery -A workers.app worker`` does
        assert app is workers.app.app is workers.app.get_app()
        from workers.app import settings
        assert settings is workers.app.get_settings()
        print(app.conf.broker_url, settings.max_retries)
        app.loader.import_default_modules()
        for name in ("xlidx.translate", "xlidx.embed", "xlidx.write", "xlidx.describe_model"):
            task = app.tasks[name]
            queue = app.amqp.router.route({}, name)["queue"].name
            print(name, queue, type(task).__mro__[1].__name__, getattr(task, "stage", "-"),
                  task.max_retries if name != "xlidx.describe_model" else "-", task.ignore_result)
        """,
        XLIDX_BROKER_URL="redis://bogus-host:6379/3",
        XLIDX_TASK_MAX_RETRIES="4",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "redis://bogus-host:6379/3 4",
        "xlidx.translate translate BatchTask translate 4 True",
        "xlidx.embed embed BatchTask embed 4 True",
        "xlidx.write write BatchTask write 4 True",
        "xlidx.describe_model embed Task - - False",
    ]


RABBIT = {"XLIDX_BROKER_URL": "amqp://guest:guest@rabbit:5672//", "XLIDX_STATE_URL": "redis://r/1"}


def test_rabbitmq_settings_are_not_held_to_the_visibility_timeout() -> None:
    """RabbitMQ has no visibility timeout: limits that Redis's would refuse are fine."""
    long = {"XLIDX_TASK_TIME_LIMIT": "7200", "XLIDX_RETRY_BACKOFF_MAX": "600"}
    s = QueueSettings.from_env({**RABBIT, **long})
    assert not s.redis_broker and s.time_limit == 7200
    assert s.recover_after == 7200 + 600 + 120  # as long as a batch may take, plus 120 s
    with pytest.raises(ConfigError, match="XLIDX_VISIBILITY_TIMEOUT"):
        QueueSettings.from_env({**long, "XLIDX_STATE_URL": "redis://r/1"})
    for scheme in ("amqp", "amqps", "pyamqp"):
        url = f"{scheme}://rabbit//"
        assert not QueueSettings.from_env({**RABBIT, "XLIDX_BROKER_URL": url}).redis_broker
    assert QueueSettings.from_env({}).redis_broker
    # Redis: unchanged
    assert QueueSettings.from_env({}).recover_after == 3600 + 120
    assert QueueSettings.from_env({**RABBIT, "XLIDX_RECOVER_AFTER": "30"}).recover_after == 30
    # the other checks still hold with RabbitMQ
    with pytest.raises(ConfigError, match="soft time limit"):
        QueueSettings.from_env({**RABBIT, "XLIDX_TASK_SOFT_TIME_LIMIT": "2000"})


def test_celery_config_rabbitmq_confirms_publishes_redis_unchanged() -> None:
    from workers.app import celery_config

    rabbit = celery_config(QueueSettings.from_env(RABBIT))
    assert rabbit["broker_transport_options"] == {"confirm_publish": True}
    assert rabbit["broker_url"].startswith("amqp://")
    assert rabbit["result_backend"] == "redis://r/1"  # results and jobs stay in Redis
    assert rabbit["task_acks_late"] and rabbit["worker_prefetch_multiplier"] == 1
    redis_conf = celery_config(QueueSettings.from_env({}))
    assert redis_conf["broker_transport_options"] == {"visibility_timeout": 3600}
    assert redis_conf["result_backend_transport_options"] == {"visibility_timeout": 3600}
