"""Queued ingest with RabbitMQ as the broker and Redis as the job store: real RabbitMQ (a node
of its own, see :mod:`tests.fixtures.rabbitmq`), real Redis, real Celery worker processes,
the real dev node.

What differs from Redis and is checked here: a worker's unacknowledged messages come back the
moment its connection drops (no visibility timeout); ``queue status`` counts waiting messages
but cannot know those in flight; a retry's countdown is held unacknowledged by the worker
(the broker's ``consumer_timeout`` runs meanwhile); a delivery unacknowledged past
``consumer_timeout`` closes the worker's channel, which stops the Celery worker, and is
delivered again; ``queue recover`` and
``deadletters retry`` send through RabbitMQ while the job store stays in Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.queue import Workers, children
from tests.fixtures.rabbitmq import (
    TEST_CONSUMER_TIMEOUT_MS,
    RabbitServer,
    purge_queues,
    rabbitmq_binary,
)
from tests.integration.test_queue import (
    _embed_log,
    _ingest_waiting,
    _when_batches_done,
    corpus,
    ids_in,
    wait_for,
    xlidx,
)
from xlidx.config import ConnectionSettings
from xlidx.jobs.settings import QUEUES

pytestmark = pytest.mark.integration


@pytest.fixture
def rabbit_env(queue_env: dict[str, str], rabbitmq_server: RabbitServer) -> dict[str, str]:
    """``queue_env`` with RabbitMQ as the broker; the test Redis keeps jobs and results."""
    if not rabbitmq_server.ping():
        rabbitmq_server.start()
    purge_queues(rabbitmq_server, QUEUES)
    return {
        **queue_env,
        "XLIDX_BROKER_URL": rabbitmq_server.url,
        "XLIDX_STATE_URL": queue_env["XLIDX_BROKER_URL"],
    }


def queue_counts(server: RabbitServer) -> dict[str, tuple[int, int]]:
    """(ready, unacknowledged) messages per queue, as RabbitMQ itself counts them."""
    res = server.ctl("list_queues", "-q", "--no-table-headers", "name", "messages_ready",
                     "messages_unacknowledged")  # fmt: skip
    assert res.returncode == 0, res.stderr
    counts = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in QUEUES:
            counts[parts[0]] = (int(parts[1]), int(parts[2]))
    return counts


def status_json(env: dict[str, str]) -> dict[str, Any]:
    proc = xlidx("queue", "status", "--json", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def pause_mid_embed(worker: Any) -> int:
    """SIGSTOP the embed worker's pool process while it holds an embed task it has not
    finished (received, not yet embedded); returns the pool process's pid."""
    assert worker.proc is not None
    (pool,) = children(worker.proc.pid)
    deadline = time.monotonic() + 60
    while True:
        os.kill(pool, signal.SIGSTOP)
        received, embedded = _embed_log(worker.text())
        if len(received) > len(embedded):
            return pool
        os.kill(pool, signal.SIGCONT)
        assert time.monotonic() < deadline, f"embed worker never busy:\n{worker.text()}"
        time.sleep(0.01)


def test_queued_job_through_rabbitmq_status_recover_and_retry(
    workers: Workers, rabbit_env: dict[str, str], queue_env: dict[str, str],
    rabbitmq_server: RabbitServer, dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """RabbitMQ carries the batches, Redis keeps the job: exact counts, each batch once;
    ``queue status`` counts waiting messages per queue and says in flight is not known;
    ``queue recover`` and ``deadletters retry`` send through RabbitMQ."""
    workers.env = rabbit_env
    worker = workers.xlidx("translate,embed,write")
    assert "broker amqp://127.0.0.1:" in worker.text()  # the password is not shown

    proc = xlidx(
        "ingest", str(corpus(tmp_path / "a.jsonl", 40)), "--index", index_name, "--queue",
        "--wait", "--json", "--batch-size", "10", env=rabbit_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["indexed"], summary["unchanged"], summary["dead_lettered"]) == (40, 0, 0)
    assert summary["batches"] == summary["batches_done"] == 4
    assert sorted(ids_in(dev_node, index_name)) == sorted(f"d{i}" for i in range(40))

    report = status_json(rabbit_env)
    assert report["waiting"] == {"translate": 0, "embed": 0, "write": 0}
    assert report["in_flight"] is None and "not known for this broker" in report["in_flight_note"]
    assert sorted(q for qs in report["workers"].values() for q in qs) == list(sorted(QUEUES))
    assert [j["state"] for j in report["jobs"]] == ["done"]
    text = xlidx("queue", "status", env=rabbit_env, timeout=60)
    assert text.returncode == 0, text.stderr
    assert "in flight: not known for this broker" in text.stdout
    assert "Traceback" not in text.stderr

    # no worker: the batches wait in RabbitMQ; recover sends them again (both copies wait)
    worker.stop()
    n1 = {"id": "n1", "body": "A number goes here.", "price": 12}
    job = xlidx(
        "ingest", str(corpus(tmp_path / "b.jsonl", 59, extra=[n1])), "--index", index_name,
        "--queue", "--json", "--batch-size", "10", env=rabbit_env,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr
    job_id = json.loads(job.stdout)["job"]
    assert status_json(rabbit_env)["waiting"]["translate"] == 6
    recovered = xlidx("queue", "recover", "--job", job_id, env=rabbit_env)
    assert recovered.returncode == 0, recovered.stderr
    assert "sent 6 unfinished batch(es) again" in recovered.stdout
    assert status_json(rabbit_env)["waiting"]["translate"] == 12
    workers.xlidx("translate,embed,write")
    final = wait_for(job_id, queue_env, timeout=120)  # queue_env: its Redis is the job store
    assert final.batches_done == final.batches == 6  # 12 chains ran, each batch counted once
    assert (final.indexed, final.unchanged, final.dead_lettered) == (20, 40, 0)
    ids = ids_in(dev_node, index_name)
    assert len(ids) == 60 and set(ids) == {f"d{i}" for i in range(59)} | {"n1"}

    # a write-stage dead letter, retried through RabbitMQ as a new job
    conflict = tmp_path / "conflict.jsonl"
    conflict.write_text(json.dumps({"id": "n2", "body": "Not a number.", "price": "cheap"}) + "\n")
    bad = xlidx(
        "ingest", str(conflict), "--index", index_name, "--queue", "--wait", "--json",
        env=rabbit_env,
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    retried = xlidx("deadletters", "retry", env=rabbit_env)
    assert retried.returncode == 0, retried.stderr
    new_job = re.search(r"queued 1 record\(s\) of job \w+ again as job (\w+)", retried.stdout)
    assert new_job, retried.stdout
    again = wait_for(new_job.group(1), queue_env, timeout=60)
    assert again.dead_lettered == 1 and again.batches_done == again.batches == 1
    listed = xlidx("deadletters", "list", "--jsonl", env=rabbit_env)
    (letter,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert letter["id"] == "n2" and letter["job"] == new_job.group(1)
    assert letter["stage"] == "write" and "mapper_parsing_exception" in letter["reason"]


def _assert_all_once_and_redelivered(
    proc: Any, successor: Any, in_flight: str, settings: ConnectionSettings, index: str, n: int
) -> None:
    """The ``--wait`` client saw 15 batches done with nothing dead-lettered, the index holds
    d0…d{n-1} once each, and the successor worker got the message the first one held."""
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["batches_done"] == summary["batches"] == 15
    assert (summary["indexed"], summary["dead_lettered"]) == (n, 0)
    ids = ids_in(settings, index)
    assert len(ids) == n and set(ids) == {f"d{i}" for i in range(n)}
    received, _ = _embed_log(successor.text())
    assert in_flight in received  # the very message the first worker held


def test_sigkilled_worker_message_comes_back_at_once(
    workers: Workers, rabbit_env: dict[str, str], queue_env: dict[str, str],
    rabbitmq_server: RabbitServer, dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The worker is SIGKILLed (all its processes) holding an unfinished embed task:
    RabbitMQ puts the message back on the queue as soon as the connection drops, with no
    visibility timeout; the next worker gets that very message, and the job ends with
    every document once. ``--wait`` is kept from sending anything again."""
    env = {**rabbit_env, "XLIDX_RECOVER_AFTER": "3600"}
    workers.env = env
    embed = workers.xlidx("translate,embed,write")
    n = 150
    finished = _ingest_waiting(corpus(tmp_path / "docs.jsonl", n), index_name, env)
    _when_batches_done(queue_env, 3)

    pause_mid_embed(embed)
    received, _ = _embed_log(embed.text())
    in_flight = received[-1]
    assert queue_counts(rabbitmq_server)["embed"][1] == 1  # held, unacknowledged
    embed.kill()  # SIGKILL, main process and pool process alike
    killed = time.monotonic()
    while queue_counts(rabbitmq_server)["embed"][1]:  # no embed consumer left: back in line
        assert time.monotonic() - killed < 15, queue_counts(rabbitmq_server)
        time.sleep(0.05)
    back_after = time.monotonic() - killed

    successor = workers.xlidx("translate,embed,write")
    ready = time.monotonic()
    _assert_all_once_and_redelivered(finished(180), successor, in_flight, dev_node, index_name, n)
    done = time.monotonic()
    visibility = float(queue_env["XLIDX_VISIBILITY_TIMEOUT"])
    assert back_after < 10.0 < visibility  # rabbitmqctl itself takes 1-3 s a call here
    print(f"message back {back_after:.2f}s after the kill; job done {done - ready:.1f}s after "
          f"the new worker was ready ({done - killed:.1f}s after the kill)")  # fmt: skip
    assert done - ready < visibility


class Gate:
    """A TCP forwarder to the cluster that can refuse connections: the cluster "down"."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self.sock: socket.socket | None = None
        self.port = 0
        self.threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reserve(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def open(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        t = threading.Thread(target=self._accept, args=(self.sock,), daemon=True)
        t.start()
        self.threads.append(t)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.fixture
def gate(dev_node: ConnectionSettings) -> Iterator[Gate]:
    g = Gate(dev_node.urls[0])
    g.reserve()
    yield g
    g.close()


def test_retry_countdown_on_rabbitmq(
    workers: Workers, rabbit_env: dict[str, str], queue_env: dict[str, str],
    rabbitmq_server: RabbitServer, dev_node: ConnectionSettings, index_name: str,
    tmp_path: Path, gate: Gate,
) -> None:  # fmt: skip
    """The cluster is unreachable for the workers: every batch is retried with a countdown
    (an ETA message that the worker holds unacknowledged until it is due, prefetch 1
    notwithstanding); once it answers again every document lands once."""
    workers.env = {**rabbit_env, "XLIDX_URL": gate.url}  # closed: connections refused
    worker = workers.xlidx("translate,embed,write")  # describing a model needs no cluster
    src = corpus(tmp_path / "docs.jsonl", 30)
    finished = _ingest_waiting(src, index_name, rabbit_env)  # the client reaches the cluster
    deadline = time.monotonic() + 60
    held = 0
    while worker.text().count("retry in") < 6 or held < 2:
        held = max(held, queue_counts(rabbitmq_server).get("translate", (0, 0))[1])
        assert time.monotonic() < deadline, worker.text()
        time.sleep(0.2)
    # ETA messages are held by the worker, more than the prefetch of 1 (Celery raises it)
    assert held >= 2
    gate.open()
    proc = finished(120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["batches_done"] == summary["batches"] == 3
    assert (summary["indexed"], summary["dead_lettered"]) == (30, 0)
    ids = ids_in(dev_node, index_name)
    assert len(ids) == 30 and set(ids) == {f"d{i}" for i in range(30)}


@pytest.fixture
def impatient_rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitServer]:
    """A RabbitMQ node of its own whose ``consumer_timeout`` (3 s) is below the task limits."""
    from tests.conftest import free_port

    server = RabbitServer(
        rabbitmq_binary(),
        free_port(),
        tmp_path_factory.mktemp("rabbitmq-impatient"),
        config=("consumer_timeout = 3000",),
        advanced="{rabbit, [{channel_tick_interval, 500}]}",
    )
    server.start()
    yield server
    server.stop()


def test_consumer_timeout_below_the_task_limit_stops_the_worker(
    workers: Workers, queue_env: dict[str, str], impatient_rabbit: RabbitServer,
    dev_node: ConnectionSettings, index_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """Why RabbitMQ's ``consumer_timeout`` must exceed the hard limit plus the longest retry
    wait: RabbitMQ closes the channel of a delivery unacknowledged for longer, and Celery
    takes that for an unrecoverable error: the whole worker stops. The message goes back to
    the queue and the next worker runs it again (idempotent: the job still ends with every
    document once), but the worker is gone until something restarts it."""
    # the session broker follows the rule; this one does not
    limits = float(queue_env["XLIDX_TASK_TIME_LIMIT"]) + float(queue_env["XLIDX_RETRY_BACKOFF_MAX"])
    assert limits < TEST_CONSUMER_TIMEOUT_MS / 1000
    env = {
        **queue_env,
        "XLIDX_BROKER_URL": impatient_rabbit.url,
        "XLIDX_STATE_URL": queue_env["XLIDX_BROKER_URL"],
        "XLIDX_RECOVER_AFTER": "3600",
    }
    workers.env = env
    embed = workers.xlidx("translate,embed,write")
    assert embed.proc is not None
    n = 150
    finished = _ingest_waiting(corpus(tmp_path / "docs.jsonl", n), index_name, env)
    _when_batches_done(queue_env, 2)
    pool = pause_mid_embed(embed)  # a batch that takes longer than the consumer timeout
    received, _ = _embed_log(embed.text())
    in_flight = received[-1]
    deadline = time.monotonic() + 15
    while "Unrecoverable error" not in embed.text():
        assert time.monotonic() < deadline, embed.text()
        time.sleep(0.1)
    os.kill(pool, signal.SIGCONT)
    embed.proc.wait(timeout=60)  # the worker stops by itself
    log = embed.text()
    assert "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out" in log, log

    # what fixes it: a consumer timeout above the limits (and above a worker's start, as a
    # worker takes messages before its pool processes have loaded their models)
    raised = impatient_rabbit.ctl("eval", "application:set_env(rabbit, consumer_timeout, 60000).")
    assert raised.returncode == 0, raised.stderr
    successor = workers.xlidx("translate,embed,write")
    _assert_all_once_and_redelivered(finished(120), successor, in_flight, dev_node, index_name, n)


def test_rabbitmq_settings_ignore_the_visibility_timeout(queue_env: dict[str, str]) -> None:
    """Limits that Redis's visibility timeout would refuse are fine with RabbitMQ."""
    env = {
        **queue_env,
        "XLIDX_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
        "XLIDX_STATE_URL": queue_env["XLIDX_BROKER_URL"],
        "XLIDX_TASK_TIME_LIMIT": "7200",
        "XLIDX_TASK_SOFT_TIME_LIMIT": "",
        "XLIDX_RETRY_BACKOFF_MAX": "",
        "XLIDX_VISIBILITY_TIMEOUT": "",
    }
    proc = xlidx("deadletters", "list", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr  # the job store answers; no settings error
    assert "no dead letters" in proc.stdout
    redis_env = {**env, "XLIDX_BROKER_URL": queue_env["XLIDX_BROKER_URL"]}
    refused = xlidx("deadletters", "list", env=redis_env, timeout=60)
    assert refused.returncode == 1 and "XLIDX_VISIBILITY_TIMEOUT" in refused.stderr
