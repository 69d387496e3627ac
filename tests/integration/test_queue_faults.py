"""The rows of the failure table (docs/operations/failures.md) that need a worker to fail,
reproduced with real Redis, real Celery worker processes and the real dev node (behind a
failing proxy where the cluster must misbehave). Limits are short, set through the documented
``XLIDX_*`` settings, so that each test takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.proxy import Faults, start_proxy
from tests.fixtures.queue import WorkerProc, Workers, children, process_env
from tests.fixtures.st_builder import build_tiny_st_model
from tests.integration.test_queue import corpus, ids_in, xlidx
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(dev_node: ConnectionSettings) -> Iterator[tuple[Faults, str]]:
    faults = Faults()
    server, url = start_proxy(dev_node.urls[0], faults)
    yield faults, url
    faults.always = None
    server.shutdown()
    server.server_close()


def _ingest(src: Path, index: str, env: dict[str, str], *extra: str) -> tuple[int, Any]:
    proc = xlidx(
        "ingest", str(src), "--index", index, "--queue", "--wait", "--json",
        "--batch-size", "10", *extra, env=env, timeout=240,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else proc.stderr


def _stuck_embed_worker(
    workers: Workers, env: dict[str, str], log: Path, **extra_env: str
) -> WorkerProc:
    """An embed worker whose embed stage is stuck (:mod:`tests.fixtures.stuck_worker`); it
    preloads no model, so that a replacement pool process starts at once."""
    stuck = WorkerProc(
        [sys.executable, "-m", "tests.fixtures.stuck_worker", "worker", "--queues", "embed",
         "--concurrency", "1", "--device", "cpu", "--name", f"stuck-{log.stem}@test"],
        process_env({**env, **extra_env}), log, ready_marker="worker process ready",
    )  # fmt: skip
    workers.started.append(stuck)
    return stuck.start()


def _dead_letters(env: dict[str, str], index: str) -> list[dict[str, Any]]:
    proc = xlidx("deadletters", "list", "--index", index, "--jsonl", env=env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_a_task_past_the_soft_limit_is_dead_lettered(
    workers: Workers, queue_env: dict[str, str], proxy: tuple[Faults, str],
    dev_node: ConnectionSettings, index_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """The write worker's bulk request hangs (the cluster never answers): the soft limit ends
    the task in the middle of the request, and the batch is dead-lettered with that reason
    (the cluster client catches every ``Exception`` around a request; the soft limit must
    still come through, not turn into a retry that runs on into the hard limit)."""
    faults, url = proxy
    faults.always, faults.stall_seconds = "stall", 20.0
    env = queue_env  # the short limits are the write worker's alone (workers read them)
    workers.xlidx("translate,embed")
    write = workers.xlidx(
        "write", XLIDX_URL=url, XLIDX_TASK_TIME_LIMIT="8", XLIDX_TASK_SOFT_TIME_LIMIT="2"
    )
    t0 = time.monotonic()
    code, summary = _ingest(corpus(tmp_path / "docs.jsonl", 20), index_name, env)
    assert code == 2, summary
    assert summary["dead_lettered"] == 20 and summary["indexed"] == 0
    assert time.monotonic() - t0 < 90  # not the hard limit and a resend (140 s and more)
    letters = _dead_letters(env, index_name)
    assert sorted(d["id"] for d in letters) == sorted(f"d{i}" for i in range(20))
    assert {(d["stage"], d["reason"]) for d in letters} == {
        ("write", "took longer than the soft time limit (2s)")
    }
    assert "Hard time limit" not in write.text()
    assert ids_in(dev_node, index_name) == []


def test_a_task_stuck_past_the_hard_limit_is_killed_resent_and_dead_lettered(
    workers: Workers, queue_env: dict[str, str], dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """An embed stage stuck where the soft limit cannot reach it (the signal blocked, as in
    native code): the hard limit kills its process and the message is acknowledged; ``--wait``
    sends the unfinished batch again, and its sixth start is dead-lettered (the 5-starts
    rule). The translate and write workers are the real ones. The stuck worker preloads no
    model, so that its replacement processes start at once."""
    env = {**queue_env, "XLIDX_RECOVER_AFTER": "3"}  # the client's: resend soon
    create = xlidx("index", "create", index_name, "--model", str(workers.model), env=env)
    assert create.returncode == 0, create.stderr
    workers.xlidx("translate,write")
    stuck = _stuck_embed_worker(  # the short limits are the stuck worker's alone
        workers, queue_env, tmp_path / "stuck.log", XLIDX_TASK_TIME_LIMIT="2",
        XLIDX_TASK_SOFT_TIME_LIMIT="1", XLIDX_RETRY_BACKOFF_MAX="1",
    )  # fmt: skip
    code, summary = _ingest(corpus(tmp_path / "docs.jsonl", 5), index_name, env)
    assert code == 2, summary
    assert summary["dead_lettered"] == 5 and summary["batches_done"] == 1
    (reason,) = {(d["stage"], d["reason"]) for d in _dead_letters(env, index_name)}
    assert reason[0] == "embed" and "started 5 times without finishing" in reason[1]
    log = stuck.text()
    assert log.count("Hard time limit (2.0s) exceeded for xlidx.embed") == 5, log[-3000:]
    assert ids_in(dev_node, index_name) == []


def test_a_pool_process_killed_mid_task_is_requeued_at_once(
    workers: Workers, queue_env: dict[str, str], dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The pool process running an embed task dies (SIGKILL, as the OOM killer sends): the
    worker requeues the message at once (``task_reject_on_worker_lost``), a new pool process
    takes it, and the job ends with every document, well before the visibility timeout."""
    queue_env = {**queue_env, "XLIDX_VISIBILITY_TIMEOUT": "90"}  # far from "at once"
    workers.env = queue_env
    create = xlidx("index", "create", index_name, "--model", str(workers.model), env=queue_env)
    assert create.returncode == 0, create.stderr
    workers.xlidx("translate,write")
    marker = tmp_path / "stuck-once"
    stuck = _stuck_embed_worker(
        workers, queue_env, tmp_path / "pool.log", XLIDX_TEST_STUCK_ONCE=str(marker)
    )
    n = 30
    result: list[tuple[int, Any]] = []
    client = threading.Thread(
        target=lambda: result.append(
            _ingest(corpus(tmp_path / "docs.jsonl", n), index_name, queue_env)
        )
    )
    client.start()
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the embed task never started"
        time.sleep(0.1)
    assert stuck.proc is not None
    (pool,) = children(stuck.proc.pid)
    os.kill(pool, signal.SIGKILL)
    killed = time.monotonic()
    client.join(timeout=120)
    took = time.monotonic() - killed
    assert result, "xlidx ingest --wait did not finish"
    (code, summary) = result[0]
    assert code == 0, summary
    assert summary["indexed"] == n and summary["dead_lettered"] == 0
    assert sorted(ids_in(dev_node, index_name)) == sorted(f"d{i}" for i in range(n))
    assert "WorkerLostError" in stuck.text()
    assert took < float(queue_env["XLIDX_VISIBILITY_TIMEOUT"]), took  # not redelivered late


def test_a_failing_cluster_is_retried_then_dead_lettered_then_deadletters_retry_indexes(
    workers: Workers, queue_env: dict[str, str], proxy: tuple[Faults, str],
    dev_node: ConnectionSettings, index_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """First the cluster is unreachable for a while (the connection dropped): the write task
    is retried with backoff and the documents land. Then it answers every bulk request with
    503: after ``XLIDX_TASK_MAX_RETRIES`` retries the batch is dead-lettered; once the
    cluster is healthy, ``xlidx deadletters retry`` indexes every document, once."""
    faults, url = proxy
    env = {**queue_env, "XLIDX_TASK_MAX_RETRIES": "2", "XLIDX_RETRY_BACKOFF_MAX": "1"}
    workers.env = env
    workers.xlidx("translate,embed")
    write = workers.xlidx("write", XLIDX_URL=url)
    n = 10
    faults.plan = ["drop"] * 3  # the writer's own tries, then a retry through the broker
    first = f"{index_name}-first"
    code, summary = _ingest(corpus(tmp_path / "first.jsonl", n), first, env)
    assert code == 0, summary
    assert summary["indexed"] == n and summary["dead_lettered"] == 0
    assert sorted(ids_in(dev_node, first)) == sorted(f"d{i}" for i in range(n))
    assert "retry in" in write.text()  # the outage was seen and ridden out

    faults.always = 503
    code, summary = _ingest(corpus(tmp_path / "docs.jsonl", n), index_name, env)
    assert code == 2, summary
    assert summary["dead_lettered"] == n and summary["indexed"] == 0
    letters = _dead_letters(env, index_name)
    assert {d["stage"] for d in letters} == {"write"}
    assert all(d["reason"].startswith("still failing after 2 retries") for d in letters)
    assert all("503" in d["reason"] for d in letters), letters[0]
    assert faults.bulk_calls >= 3  # tried at least once in each of its 3 deliveries

    faults.always = None  # the cluster is healthy again
    retried = xlidx("deadletters", "retry", "--index", index_name, env=env)
    assert retried.returncode == 0, retried.stderr
    assert f"queued {n} record(s)" in retried.stdout
    deadline = time.monotonic() + 90
    while len(ids_in(dev_node, index_name)) < n:
        assert time.monotonic() < deadline, "the retried dead letters were not indexed"
        time.sleep(0.5)
    time.sleep(1.0)
    ids = ids_in(dev_node, index_name)
    assert sorted(ids) == sorted(f"d{i}" for i in range(n))  # each once
    assert _dead_letters(env, index_name) == []


def _mapping_meta(settings: ConnectionSettings, index: str) -> dict[str, Any]:
    from xlidx.backends import open_backend
    from xlidx.indices.manage import resolve

    state = resolve(open_backend(settings), index)
    assert state is not None
    return dict(state.xlidx_meta)


def test_an_embed_worker_loads_another_model_or_refuses_a_mismatch(
    workers: Workers, queue_env: dict[str, str], dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A job naming a model the embed worker did not preload: the worker loads it once and
    the index is built with it. Then the model's directory is replaced by another model (the
    copy on a worker that differs from the one the index was built with): the worker refuses
    it, and the batch is dead-lettered at ``embed`` with the mismatch named."""
    other = build_tiny_st_model(tmp_path / "other-model", hidden=48, seed=1)
    workers.xlidx("translate,write")
    embed = workers.xlidx("embed")  # preloads the 32-d fixture model
    code, summary = _ingest(
        corpus(tmp_path / "a.jsonl", 20), index_name, queue_env, "--model", str(other)
    )
    assert code == 0, summary
    assert summary["indexed"] == 20
    assert _mapping_meta(dev_node, index_name)["embedding"]["dimension"] == 48
    assert embed.text().count(f"loaded embedding model {other}") == 1

    embed.stop()
    shutil.rmtree(other)
    build_tiny_st_model(other, hidden=64, seed=2)
    workers.xlidx("embed")
    rows = [{"id": f"e{i}", "body": f"Another document, number {i}."} for i in range(10)]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, summary = _ingest(tmp_path / "b.jsonl", index_name, queue_env)
    assert code == 2, summary
    assert summary["dead_lettered"] == 10
    letters = [d for d in _dead_letters(queue_env, index_name) if d["id"].startswith("e")]
    assert len(letters) == 10 and {d["stage"] for d in letters} == {"embed"}
    reason = letters[0]["reason"]
    assert "was built with model" in reason and "(48-d); refusing to use" in reason, reason
    assert len(ids_in(dev_node, index_name)) == 20
