"""Queued ingest end to end: real Redis, real Celery worker processes, the real dev node.

Each test feeds documents through ``xlidx ingest --queue`` to one worker per queue and checks
that exactly the expected documents end up in the index, also when a worker is SIGKILLed, the
OpenSearch node or Redis is restarted mid-run, or records are bad.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from tests.conftest import REPO
from tests.fixtures.queue import RedisServer, Workers, children, process_env
from tests.fixtures.translation import FR_EN_PAIRS
from xlidx.backends.opensearch.client import make_client
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration

SENTENCES = {
    "en": "The river flooded the old town after three days of heavy rain.",
    "fr": "La rivière a inondé la vieille ville après trois jours de fortes pluies.",
    "de": "Der Fluss überschwemmte die Altstadt nach drei Tagen starken Regens.",
}


def corpus(path: Path, n: int, *, extra: list[Any] | None = None) -> Path:
    langs = list(SENTENCES)
    rows: list[Any] = [
        {"id": f"d{i}", "title": f"{i}", "body": f"{SENTENCES[langs[i % 3]]} ({i})"}
        for i in range(n)
    ]
    rows += extra or []
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
        + "\n"
    )
    return path


def xlidx(
    *args: str, env: dict[str, str], timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xlidx", *args],
        capture_output=True,
        text=True,
        env=process_env(env),
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def enqueue(src: Path, index: str, env: dict[str, str], *extra: str) -> str:
    proc = xlidx("ingest", str(src), "--index", index, "--queue", "--json", *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    job: str = json.loads(proc.stdout)["job"]
    return job


def store(env: dict[str, str]) -> Any:
    from xlidx.jobs.store import JobStore

    return JobStore(env["XLIDX_BROKER_URL"])


def wait_for(job: str, env: dict[str, str], *, at_least: int = 0, timeout: float = 240.0) -> Any:
    """Poll until ``at_least`` batches are done (0: until the job is finished)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            p = store(env).progress(job)
        except Exception:
            p = None
        if p is not None and (p.finished if not at_least else p.batches_done >= at_least):
            return p
        time.sleep(0.3)
    raise AssertionError(f"job {job} not there within {timeout:g}s: {p}")


def _ingest_waiting(
    src: Path, index: str, env: dict[str, str]
) -> Callable[[float], subprocess.CompletedProcess[str]]:
    """Start ``xlidx ingest --queue --wait`` in batches of 10 in a thread; the returned
    function waits for it and gives its result."""
    result: list[subprocess.CompletedProcess[str]] = []
    argv = (
        "ingest",
        str(src),
        "--index",
        index,
        "--queue",
        "--wait",
        "--json",
        "--batch-size",
        "10",
    )
    client = threading.Thread(target=lambda: result.append(xlidx(*argv, env=env)))
    client.start()

    def finished(timeout: float) -> subprocess.CompletedProcess[str]:
        client.join(timeout=timeout)
        assert result, f"xlidx ingest --wait did not finish within {timeout:g}s"
        return result[0]

    return finished


def _when_batches_done(env: dict[str, str], n: int, timeout: float = 120.0) -> None:
    """Wait until the newest job has ``n`` batches done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = store(env).recent_jobs(1)
        if jobs and jobs[0].batches_done >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"no job reached {n} batches within {timeout:g}s")


def ids_in(settings: ConnectionSettings, index: str) -> list[str]:
    client = make_client(settings)
    client.indices.refresh(index=index)
    res = client.search(
        index=index, body={"size": 10_000, "_source": False, "query": {"match_all": {}}}
    )
    return [h["_id"] for h in res["hits"]["hits"]]


def _assert_every_batch_once(
    proc: subprocess.CompletedProcess[str], settings: ConnectionSettings, index: str, n: int
) -> None:
    """The ``--wait`` client saw all 30 batches done, nothing dead-lettered, and the index holds
    documents d0…d{n-1}, each once."""
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["batches_done"] == summary["batches"] == 30
    assert summary["dead_lettered"] == 0
    assert summary["indexed"] + summary["unchanged"] == n
    ids = ids_in(settings, index)
    assert len(ids) == n and sorted(set(ids)) == sorted(f"d{i}" for i in range(n))


def _assert_calibrated_by_the_workers(
    settings: ConnectionSettings, index: str, langs: set[str], timeout: float = 90.0
) -> None:
    """An embed worker calibrated the index as in-process ingest does (every language with 50
    documents has means), and every stored vector is at the calibration's means."""
    from xlidx.backends import open_backend
    from xlidx.indices.manage import resolve
    from xlidx.pipeline.calibration import from_index_meta

    backend = open_backend(settings)
    deadline = time.monotonic() + timeout
    while True:
        state = resolve(backend, index)
        cal = from_index_meta(state.xlidx_meta) if state is not None else None
        if state is not None and cal is not None and set(cal.languages) == langs:
            backend.refresh(state.index)
            if backend.count_stale(state.index, cal) == 0:
                return
        assert time.monotonic() < deadline, f"no calibration of {sorted(langs)} in {timeout:g}s"
        time.sleep(0.5)


def test_n_queued_n_indexed_through_one_worker_per_queue(
    workers: Workers, queue_env: dict[str, str], dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    embed = workers.one_per_queue()["embed"]
    src = corpus(tmp_path / "docs.jsonl", 240)

    proc = xlidx(
        "ingest", str(src), "--index", index_name, "--queue", "--wait", "--json",
        "--batch-size", "16", env=queue_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["indexed"], summary["unchanged"], summary["dead_lettered"]) == (240, 0, 0)
    assert summary["batches"] == summary["batches_done"] == 15
    assert summary["languages"] == {"en": 80, "fr": 80, "de": 80}
    assert sorted(ids_in(dev_node, index_name)) == sorted(f"d{i}" for i in range(240))
    _assert_calibrated_by_the_workers(dev_node, index_name, {"en", "fr", "de"})

    # the model was loaded once, when the process started, not per task
    assert embed.text().count("loaded embedding model") == 1
    assert embed.text().index("loaded embedding model") < embed.text().index("embed: ")

    again = xlidx(
        "ingest", str(src), "--index", index_name, "--queue", "--wait", "--json", env=queue_env
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["unchanged"] == 240

    status = xlidx("queue", "status", "--json", env=queue_env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["waiting"] == {"translate": 0, "embed": 0, "write": 0}
    assert report["in_flight"] == 0
    assert report["dead_letters"] == 0
    assert sorted(q for qs in report["workers"].values() for q in qs) == [
        "embed",
        "translate",
        "write",
    ]
    assert [j["state"] for j in report["jobs"]] == ["done", "done"]


def test_queued_translation_matches_in_process(
    workers: Workers, queue_env: dict[str, str], dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A plain ``celery -A workers.app worker`` serves every queue, translating exactly."""
    workers.celery("translate,embed,write")
    fr = " ".join(fr for fr, _ in FR_EN_PAIRS[:3])
    en = " ".join(en for _, en in FR_EN_PAIRS[:3])
    src = tmp_path / "fr.jsonl"
    src.write_text(json.dumps({"id": "fr-1", "body": fr}) + "\n")
    proc = xlidx(
        "ingest", str(src), "--index", index_name, "--queue", "--wait", "--translate-to", "en",
        "--languages", "fr,en", env=queue_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    client = make_client(dev_node)
    doc = client.get(index=index_name, id="fr-1")["_source"]
    assert doc["i18n"]["body"] == {"fr": fr, "en": en}
    meta = client.indices.get_mapping(index=index_name)
    packages = next(iter(meta.values()))["mappings"]["_meta"]["xlidx"]["translation_packages"]
    assert [(p["from"], p["to"]) for p in packages] == [("fr", "en")]


def test_sigkilled_worker_restarted_loses_and_duplicates_nothing(
    workers: Workers, queue_env: dict[str, str], dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """``--wait`` follows the job through the kill; messages the killed worker held come back
    after the visibility timeout, or are sent again when none finished for a while."""
    embed = workers.one_per_queue()["embed"]
    n = 300
    src = corpus(tmp_path / "docs.jsonl", n)
    env = {**queue_env, "XLIDX_RECOVER_AFTER": "45"}
    finished = _ingest_waiting(src, index_name, env)
    _when_batches_done(queue_env, 3)
    embed.kill()  # SIGKILL, main process and pool process alike: nothing is acknowledged
    workers.xlidx("embed")
    _assert_every_batch_once(finished(400), dev_node, index_name, n)


def test_a_lost_message_is_sent_again(
    workers: Workers, queue_env: dict[str, str], redis_server: RedisServer,
    dev_node: ConnectionSettings, index_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """The Redis transport pops a message before it records it as unacknowledged: a worker
    killed in between loses it. The job store keeps every unfinished batch, so
    ``xlidx queue recover`` (and ``--wait``, by itself) sends it again."""
    import redis

    n = 50
    workers.xlidx("embed")  # describes the model of the new index
    job = enqueue(corpus(tmp_path / "docs.jsonl", n), index_name, queue_env, "--batch-size", "10")
    assert redis.Redis(port=redis_server.port).lpop("translate") is not None  # one lost
    workers.xlidx("translate,write")
    stalled = wait_for(job, queue_env, at_least=4)
    time.sleep(2)
    assert store(queue_env).progress(job).batches_done == 4 == stalled.batches_done
    proc = xlidx("queue", "recover", "--job", job, env=queue_env)
    assert proc.returncode == 0, proc.stderr
    assert "sent 1 unfinished batch(es) again" in proc.stdout
    final = wait_for(job, queue_env)
    assert final.batches_done == final.batches == 5
    assert sorted(ids_in(dev_node, index_name)) == sorted(f"d{i}" for i in range(n))
    again = xlidx("queue", "recover", "--job", job, env=queue_env)
    assert "nothing to recover" in again.stdout


def test_redis_restarted_mid_run_nothing_lost(
    workers: Workers, queue_env: dict[str, str], redis_server: RedisServer,
    dev_node: ConnectionSettings, index_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """With the append-only file, a Redis restart loses no message; ``--wait`` rides it out."""
    workers.one_per_queue()
    n = 300
    src = corpus(tmp_path / "docs.jsonl", n)
    finished = _ingest_waiting(src, index_name, queue_env)
    _when_batches_done(queue_env, 3)
    redis_server.stop()
    time.sleep(3)
    redis_server.start()
    proc = finished(300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["dead_lettered"] == 0
    assert summary["batches_done"] == summary["batches"] == 30
    ids = ids_in(dev_node, index_name)
    assert len(ids) == n and set(ids) == {f"d{i}" for i in range(n)}


def test_bad_records_dead_lettered_good_ones_indexed(
    workers: Workers, queue_env: dict[str, str], dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    workers.xlidx("translate,embed,write")
    bad = [
        "{not json",
        {"id": "no-text", "title": ""},
        {"id": "wrong-type", "body": {"nested": True}},
        {"id": "n1", "body": "A number goes here.", "price": 12},
    ]
    src = corpus(tmp_path / "docs.jsonl", 20, extra=bad)
    first = xlidx(
        "ingest", str(src), "--index", index_name, "--queue", "--wait", "--json", env=queue_env
    )
    assert first.returncode == 2, first.stderr  # three records could not even be read or validated
    assert json.loads(first.stdout)["dead_lettered"] == 3
    conflict = tmp_path / "conflict.jsonl"
    conflict.write_text(json.dumps({"id": "n2", "body": "Not a number.", "price": "cheap"}) + "\n")
    proc = xlidx(
        "ingest", str(conflict), "--index", index_name, "--queue", "--wait", "--json",
        env=queue_env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "dead-lettered" in proc.stderr

    listed = xlidx("deadletters", "list", "--jsonl", env=queue_env)
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    by = {(d["id"] or d["origin"]): d for d in letters}
    assert by["docs.jsonl:21"]["stage"] == "read"
    assert "no text" in by["no-text"]["reason"]
    assert "must be a string" in by["wrong-type"]["reason"]
    assert by["n2"]["stage"] == "write" and "mapper_parsing_exception" in by["n2"]["reason"]
    assert by["n2"]["record"] == {"id": "n2", "body": "Not a number.", "price": "cheap"}
    assert len(letters) == 4
    assert len(ids_in(dev_node, index_name)) == 21

    table = xlidx("deadletters", "list", "--stage", "write", env=queue_env)
    assert "n2" in table.stdout and "no-text" not in table.stdout

    retried = xlidx("deadletters", "retry", env=queue_env)
    assert retried.returncode == 0, retried.stderr
    assert "queued 1 record(s)" in retried.stdout
    assert "3 dead letter(s) left" in retried.stderr  # read/validate ones stay

    purge = xlidx("deadletters", "purge", env=queue_env)
    assert purge.returncode == 1 and "needs --yes" in purge.stderr
    purged = xlidx("deadletters", "purge", "--yes", "--stage", "validate", env=queue_env)
    assert purged.returncode == 0 and "purged 2" in purged.stdout


def test_job_gone_from_a_redis_without_persistence_is_reported(
    queue_env: dict[str, str], redis_server: RedisServer
) -> None:
    from xlidx.errors import QueueError
    from xlidx.jobs.submit import follow

    s = store(queue_env)
    s.create_job("lost", index="x", source="test", options={})
    redis_server.flush()  # what a restart of a Redis without persistence leaves
    with pytest.raises(QueueError, match="gone from the job store"):
        follow(s, "lost", poll=0.05)


@pytest.mark.parametrize(
    ("args", "env_extra", "message"),
    [
        (["worker", "--queues", "gpu"], {}, "unknown queue(s) gpu"),
        (["worker", "--device", "tpu"], {}, "unknown device 'tpu'"),
        (["worker"], {"XLIDX_BROKER_URL": "redis://127.0.0.1:1/0"}, "cannot reach Redis"),
        (["worker"], {"XLIDX_BROKER_URL": "kafka://x"}, "must be a redis:// or amqp:// URL"),
        (["worker"], {"XLIDX_VISIBILITY_TIMEOUT": "60"}, "XLIDX_VISIBILITY_TIMEOUT (60s) must"),
        (["worker"], {"XLIDX_TASK_TIME_LIMIT": "soon"}, "must be a number of seconds"),
        (["queue", "status"], {"XLIDX_BROKER_URL": "redis://127.0.0.1:1/0"}, "cannot"),
        (["deadletters", "list"], {"XLIDX_BROKER_URL": "redis://127.0.0.1:1/0"}, "cannot"),
        (["deadletters", "retry", "--stage", "read"], {}, "cannot be retried as they are"),
    ],
)
def test_queue_commands_bad_input_one_line(
    args: list[str], env_extra: dict[str, str], message: str, queue_env: dict[str, str]
) -> None:
    env = {k: v for k, v in queue_env.items() if not k.startswith("XLIDX_TASK")}
    env.pop("XLIDX_VISIBILITY_TIMEOUT")
    env.pop("XLIDX_RETRY_BACKOFF_MAX")
    proc = xlidx(*args, env={**env, **env_extra}, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_ingest_queue_bad_input(queue_env: dict[str, str], index_name: str, tmp_path: Path) -> None:
    src = corpus(tmp_path / "docs.jsonl", 3)
    cases = [
        (["--wait"], {}, "--wait only applies with --queue"),
        (["--queue", "--dead-letter", "x.jsonl"], {}, "--dead-letter does not apply"),
        (["--queue"], {"XLIDX_BROKER_URL": "redis://127.0.0.1:1/0"}, "cannot reach Redis"),
        (["--queue"], {"XLIDX_DESCRIBE_TIMEOUT": "2"}, "no worker on the embed queue"),
    ]
    for extra, env_extra, message in cases:
        proc = xlidx(
            "ingest", str(src), "--index", index_name, *extra, env={**queue_env, **env_extra},
            timeout=60,
        )  # fmt: skip
        assert proc.returncode == 1, (extra, proc.stderr)
        assert message in proc.stderr, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr


def _embed_log(log: str) -> tuple[list[str], list[str]]:
    """From an embed worker's log: the ids of the embed tasks received, and the batches
    embedded (``job:n``), in order. With one pool process they pair up one to one."""
    received = re.findall(r"Task xlidx\.embed\[([0-9a-f-]+)\] received", log)
    embedded = re.findall(r"batch (\S+) embed: \d+ record\(s\)", log)
    return received, embedded


def _unacked_on(redis_server: RedisServer, queue: str) -> list[str]:
    """Delivery tags of messages of ``queue`` the Redis transport holds as unacknowledged."""
    import redis

    held = cast(dict[bytes, bytes], redis.Redis(port=redis_server.port).hgetall("unacked"))
    return [tag.decode() for tag, raw in held.items() if json.loads(raw)[2] == queue]


def test_sigterm_mid_batch_warm_shutdown_loses_nothing(
    workers: Workers, queue_env: dict[str, str], redis_server: RedisServer,
    dev_node: ConnectionSettings, index_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """SIGTERM to a worker's main process (``docker stop``) is Celery's warm shutdown: it
    stops taking messages, lets the task in flight finish, acknowledges it and exits 0.
    Nothing is left to deliver again, so no recovery is needed (it is kept out of reach here)
    and the job finishes on a new worker with every document indexed once.

    A batch embeds in well under a second here, so the pool process is paused (SIGSTOP) with
    a task in flight while the main process gets SIGTERM, and resumed a little later: a slow
    batch, without a race."""
    embed = workers.one_per_queue()["embed"]
    assert embed.proc is not None
    (pool,) = children(embed.proc.pid)
    n = 300
    src = corpus(tmp_path / "docs.jsonl", n)
    env = {**queue_env, "XLIDX_RECOVER_AFTER": "3600"}  # --wait sends nothing again
    finished = _ingest_waiting(src, index_name, env)
    _when_batches_done(queue_env, 3)

    deadline = time.monotonic() + 60
    while True:  # pause the pool process with an embed task received and not yet done
        os.kill(pool, signal.SIGSTOP)
        received, embedded = _embed_log(embed.text())
        if len(received) > len(embedded):
            break
        os.kill(pool, signal.SIGCONT)
        assert time.monotonic() < deadline, f"embed worker never busy:\n{embed.text()}"
        time.sleep(0.01)
    in_flight = received[-1]
    os.kill(embed.proc.pid, signal.SIGTERM)  # the main process only, as docker stop does
    time.sleep(3)
    assert embed.proc.poll() is None, embed.text()  # waiting for the task in flight
    os.kill(pool, signal.SIGCONT)
    try:
        code = embed.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"no warm shutdown within 60s:\n{embed.text()}") from None
    log = embed.text()
    assert code == 0, log
    assert "Warm shutdown" in log and "Cold shutdown" not in log, log
    # the task in flight at SIGTERM ran to the end in the stopping worker, which took no
    # other message meanwhile ...
    received, embedded = _embed_log(log)
    assert received[-1] == in_flight and len(received) == len(embedded), log
    batch = embedded[-1]
    assert log.index("Warm shutdown") < log.index(f"batch {batch} embed:"), log
    assert "Traceback" not in log and "WorkerLostError" not in log, log
    # ... and acknowledged it: no embed message is left for redelivery
    assert _unacked_on(redis_server, "embed") == [], log

    successor = workers.xlidx("embed")
    _assert_every_batch_once(finished(300), dev_node, index_name, n)
    # the batch finished at shutdown is normally not put back on the queue. Under heavy load
    # Celery's Redis transport was seen to hand it out again once (CI, 2026-12-07: finished
    # at shutdown, received by the successor 34 s later); it is then redone, and the line
    # above proves that wrote nothing twice. What must never happen is the documents of a
    # batch lost or doubled (docs/operations/failures.md says so)
    received, embedded = _embed_log(successor.text())
    if in_flight in received:
        print(f"the batch finished at warm shutdown ran again: {batch}")
