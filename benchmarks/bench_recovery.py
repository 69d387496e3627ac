"""Recovery after a SIGKILLed worker: Redis broker against RabbitMQ broker.

The same corpus, settings and workers for both brokers, Redis always the job store:

* workers: one ``translate,write`` worker and two ``embed`` workers (``xlidx worker``,
  concurrency 1 each, the tiny random sentence-transformers model of the tests, no
  translation), so that a worker is there to take the lost message at once and the figure is
  the broker's, not a worker's start-up;
* a job of ``--docs`` documents in batches of ``--batch-size``; once ``--kill-after`` batches
  are done, the first embed worker's pool process is paused while it holds an embed task it
  has not finished, and the worker's whole process group is SIGKILLed (nothing acknowledged);
* measured: seconds from the kill to the job's last batch done (``kill_to_done``), and how
  long the job sat with every other batch done, waiting for the lost one
  (``waiting_for_the_lost_batch``); the ratio is Redis over RabbitMQ.

Settings (both brokers): ``XLIDX_VISIBILITY_TIMEOUT=30`` (used by Redis only), hard limit
20 s, soft 16 s, longest backoff 5 s (20 + 5 < 30: the floor for a 30 s visibility timeout).
The Redis transport restores unacknowledged messages older than the visibility timeout only
every 10th poll of a consumer, so Redis's figure is 30 s plus up to ~10 more; RabbitMQ puts
the message back on its queue as soon as the dead worker's connection drops. No
``XLIDX_RECOVER_AFTER`` resend is involved (the benchmark polls the job store itself).

Needs ``redis-server`` and ``rabbitmq-server`` (``scripts/install.sh --test``) and a running
OpenSearch dev node (``xlidx dev up``; default http://127.0.0.1:9200); starts its own Redis
and RabbitMQ on free ports and stops them, and the workers, at the end::

    .venv/bin/python benchmarks/bench_recovery.py [--docs 200] [--batch-size 10]
        [--kill-after 3] [--runs 1] [--url http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fixtures.queue import children  # noqa: E402

SETTINGS = {
    "XLIDX_VISIBILITY_TIMEOUT": "30",
    "XLIDX_TASK_TIME_LIMIT": "20",
    "XLIDX_TASK_SOFT_TIME_LIMIT": "16",
    "XLIDX_RETRY_BACKOFF_MAX": "5",
    "XLIDX_TASK_MAX_RETRIES": "10",
    "XLIDX_RECOVER_AFTER": "3600",
}
SENTENCES = (
    "The river flooded the old town after three days of heavy rain.",
    "La rivière a inondé la vieille ville après trois jours de fortes pluies.",
    "Der Fluss überschwemmte die Altstadt nach drei Tagen starken Regens.",
)


def _busy(log: str) -> bool:
    """The embed worker received an embed task it has not embedded yet."""
    received = len(re.findall(r"Task xlidx\.embed\[[0-9a-f-]+\] received", log))
    return received > len(re.findall(r"batch \S+ embed: \d+ record\(s\)", log))


def _kill_mid_embed(worker: Any, timeout: float = 60.0) -> None:
    """Pause the worker's pool process while it holds an unfinished embed task, then SIGKILL
    the worker's process group."""
    (pool,) = children(worker.proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        os.kill(pool, signal.SIGSTOP)
        if _busy(worker.text()):
            break
        os.kill(pool, signal.SIGCONT)
        if time.monotonic() > deadline:
            raise SystemExit(f"the embed worker was never busy:\n{worker.text()[-3000:]}")
        time.sleep(0.005)
    worker.kill(signal.SIGKILL)


def run_once(
    broker: str,
    broker_url: str,
    *,
    state_url: str,
    url: str,
    model: Path,
    embedding: dict[str, Any],
    source: str,
    docs: int,
    batch_size: int,
    kill_after: int,
    tmp: Path,
) -> dict[str, Any]:
    import redis

    from tests.fixtures.queue import WorkerProc, process_env
    from xlidx.backends import open_backend
    from xlidx.config import ConnectionSettings
    from xlidx.documents import RawItem
    from xlidx.indices.manage import ensure
    from xlidx.jobs.app import make_app
    from xlidx.jobs.options import JobOptions
    from xlidx.jobs.settings import QueueSettings
    from xlidx.jobs.store import JobStore
    from xlidx.jobs.submit import enqueue
    from xlidx.pipeline.fingerprint import pipeline_fingerprint
    from xlidx.pipeline.options import IngestOptions
    from xlidx.spec import IndexSpec

    redis.Redis.from_url(state_url).flushall()
    env = {
        **SETTINGS,
        "XLIDX_URL": url,
        "XLIDX_BROKER_URL": broker_url,
        "XLIDX_STATE_URL": state_url,
        "XLIDX_HOME": str(tmp / "home"),
        "ARGOS_PACKAGES_DIR": str(tmp / "argos"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    (tmp / "argos").mkdir(exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    started: list[WorkerProc] = []

    def worker(queues: str, name: str) -> WorkerProc:
        argv = [sys.executable, "-m", "xlidx", "worker", "--queues", queues,
                "--concurrency", "1", "--device", "cpu", "--model", str(model),
                "--name", f"{name}@bench"]  # fmt: skip
        w = WorkerProc(argv, process_env(env), tmp / f"{broker}-{name}-{tag}.log",
                       ready_marker="worker process ready")  # fmt: skip
        started.append(w)
        return w

    backend = open_backend(ConnectionSettings(urls=(url,)))
    index = f"bench-recovery-{broker}-{tag}"
    try:
        tw = worker("translate,write", "translate-write")
        victim = worker("embed", "embed-a")
        standby = worker("embed", "embed-b")
        for w in (tw, victim, standby):  # start together, then wait for each
            w.start(timeout=300)
        ensure(
            backend,
            IndexSpec(name=index, embedding={**embedding, "source": source},
                      text_fields=("body",), languages=("en", "fr", "de")),
        )  # fmt: skip
        settings = QueueSettings.from_env(env)
        app = make_app(settings)
        store = JobStore(state_url)
        opts = JobOptions(
            IngestOptions(index=index, text_fields=("body",), languages=("en", "fr", "de"),
                          batch_size=batch_size),
            model=source, embedding=embedding,
            fingerprint=pipeline_fingerprint(embedding, translate_to=(), text_fields=("body",)),
        )  # fmt: skip
        items = [
            RawItem(f"bench:{i}", payload={"id": f"d{i}", "body": f"{SENTENCES[i % 3]} ({i})"})
            for i in range(docs)
        ]
        t0 = time.monotonic()
        sent = enqueue(items, app=app, store=store, options=opts, source="bench")
        while (p := store.progress(sent.job)) is None or p.batches_done < kill_after:
            time.sleep(0.02)
        _kill_mid_embed(victim)
        killed = time.monotonic()
        all_but_one: float | None = None
        while True:
            p = store.progress(sent.job)
            assert p is not None
            now = time.monotonic()
            if all_but_one is None and p.batches_done >= p.batches - 1:
                all_but_one = now
            if p.finished:
                break
            if now - killed > 300:
                raise SystemExit(f"{broker}: job not done 300 s after the kill: {p}")
            time.sleep(0.05)
        done = time.monotonic()
        backend.refresh(index)
        count = backend.count(index, {"match_all": {}})
        return {
            "batches": sent.batches,
            "kill_to_done": round(done - killed, 2),
            "waiting_for_the_lost_batch": round(done - (all_but_one or done), 2),
            "job_seconds": round(done - t0, 2),
            "indexed": p.indexed + p.unchanged,
            "documents_in_index": count,
            "exact": count == docs == p.indexed + p.unchanged and p.dead_lettered == 0,
        }
    finally:
        for w in started:
            w.stop()
        backend.delete_indices(backend.list_indices(f"{index}*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--kill-after", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--url", default="http://127.0.0.1:9200")
    args = parser.parse_args()

    from tests.conftest import free_port
    from tests.fixtures.queue import RedisServer
    from tests.fixtures.rabbitmq import RabbitServer, rabbitmq_binary
    from tests.fixtures.st_builder import build_tiny_st_model
    from xlidx.pipeline.embed import load_embedder
    from xlidx.pipeline.fingerprint import model_source

    tmp = Path(tempfile.mkdtemp(prefix="xlidx-bench-recovery-"))
    model = build_tiny_st_model(tmp / "tiny-st")
    embedder = load_embedder(str(model), device="cpu")
    embedding, source = embedder.describe(), model_source(embedder)
    del embedder

    redis_server = RedisServer(
        shutil.which("redis-server") or "/usr/bin/redis-server", free_port(), tmp / "redis"
    )
    rabbit = RabbitServer(rabbitmq_binary(), free_port(), tmp / "rabbitmq")
    results: dict[str, Any] = {"settings": SETTINGS, "docs": args.docs,
                               "batch_size": args.batch_size, "runs": {}}  # fmt: skip
    try:
        redis_server.start()
        rabbit.start()
        brokers = {"redis": redis_server.url, "rabbitmq": rabbit.url}
        for broker, broker_url in brokers.items():
            results["runs"][broker] = [
                run_once(
                    broker,
                    broker_url,
                    state_url=redis_server.url,
                    url=args.url,
                    model=model,
                    embedding=embedding,
                    source=source,
                    docs=args.docs,
                    batch_size=args.batch_size,
                    kill_after=args.kill_after,
                    tmp=tmp,
                )
                for _ in range(args.runs)
            ]
            print(broker, json.dumps(results["runs"][broker]), file=sys.stderr)
    finally:
        rabbit.stop()
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {
        b: statistics.median(r["kill_to_done"] for r in runs) for b, runs in results["runs"].items()
    }
    results["kill_to_done_median"] = med
    results["ratio_redis_over_rabbitmq"] = round(med["redis"] / med["rabbitmq"], 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
