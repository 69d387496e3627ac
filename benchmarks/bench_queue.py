"""Queued ingest (Celery, one worker process per queue) against in-process ingest.

The same corpus and models as ``bench_ingest.py`` (synthetic German documents, a Marian-base-
size de→en argos package, a random encoder of multilingual-e5-small's shape), measured in one
run against the dev node and a private ``redis-server`` on a free port:

* ``in_process``: ``xlidx.workflows.ingest`` with warm models (stages overlap in threads);
* ``queued``: the documents enqueued as ``translate → embed → write`` chains, processed by
  three ``xlidx worker`` processes (one per queue, concurrency 1, models preloaded), timed from
  the first batch sent to the last batch recorded as done;
* ``per_task``: a job of one-document batches that are all unchanged (translate only looks
  them up, embed and write have nothing to do): wall time per batch, i.e. the fixed cost a
  task adds on each queue (broker round trip, JSON payload, job-store write).

Target: queued >= 0.8 x in-process throughput.

    .venv/bin/python benchmarks/bench_queue.py [--docs 2000] [--batch-size 64] [--url URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp),
         "--appendonly", "yes", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    for _ in range(100):
        try:
            if redis.Redis(port=port).ping():
                return proc, f"redis://127.0.0.1:{port}/0"
        except redis.RedisError:
            time.sleep(0.1)
    raise SystemExit("redis-server did not start")


def _start_workers(env: dict[str, str], model: Path, logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for queue in ("translate", "embed", "write"):
        log = logs / f"{queue}.log"
        with log.open("wb") as fh:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "xlidx",
                        "worker",
                        "--queues",
                        queue,
                        "--concurrency",
                        "1",
                        "--device",
                        "cpu",
                        "--model",
                        str(model),
                        "--name",
                        f"bench-{queue}@bench",
                    ],
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=REPO,
                )
            )
    deadline = time.monotonic() + 300
    for queue in ("translate", "embed", "write"):
        while "worker process ready" not in (logs / f"{queue}.log").read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the {queue} worker did not get ready; see {logs}")
            time.sleep(0.2)
    return procs


def _wait(store: Any, job: str) -> Any:
    while True:
        p = store.progress(job)
        if p is not None and p.finished:
            return p
        time.sleep(0.02)


def _rate(n: int, seconds: float) -> dict[str, float]:
    return {"docs": n, "seconds": round(seconds, 2), "docs_per_s": round(n / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tiny-batches", type=int, default=200)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()

    from bench_ingest import ingest_setup

    from xlidx.documents import RawItem
    from xlidx.pipeline.embed import load_embedder
    from xlidx.pipeline.fingerprint import model_source, pipeline_fingerprint
    from xlidx.pipeline.translate import Translator
    from xlidx.workflows.ingest import IngestOptions, ingest

    setup = ingest_setup(args.url, args.docs)
    url, backend = setup.url, setup.backend
    packages_dir, model_dir, texts, rows = (
        setup.packages_dir, setup.model_dir, setup.texts, setup.rows,
    )  # fmt: skip
    items = [RawItem(f"bench:{i}", payload=r) for i, r in enumerate(rows)]
    tag = uuid.uuid4().hex[:6]
    results: dict[str, Any] = {"docs": args.docs, "batch_size": args.batch_size, "url": url}

    # in-process, warm models
    embedder = load_embedder(str(model_dir), device="cpu")
    translator = Translator(packages_dir, device="cpu")
    translator.translate(texts[:4], "de", "en")
    embedder.encode_document(texts[:4])
    options = IngestOptions(
        index=f"bench-inproc-{tag}", text_fields=("body",), languages=("de", "en"),
        translate_to=("en",), batch_size=args.batch_size,
    )  # fmt: skip
    t0 = time.perf_counter()
    summary = ingest(
        items, backend=backend, options=options, embedder=embedder,
        translator=translator,
    )  # fmt: skip
    results["in_process"] = _rate(summary.indexed, time.perf_counter() - t0)
    embedding = embedder.describe()
    source = model_source(embedder)
    del embedder, translator

    tmp = Path(tempfile.mkdtemp(prefix="xlidx-bench-queue-"))
    redis_proc, broker = _start_redis(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
    # a fresh XLIDX_HOME: the workers' translation cache starts empty, like the in-process
    # run's (which has none), so neither side reuses translations of an earlier run
    env.update({"XLIDX_URL": url, "XLIDX_BROKER_URL": broker, "XLIDX_HOME": str(tmp / "home"),
                "ARGOS_PACKAGES_DIR": str(packages_dir), "HF_HUB_OFFLINE": "1"})  # fmt: skip
    os.environ.update({"XLIDX_BROKER_URL": broker})
    procs = _start_workers(env, model_dir, tmp)
    try:
        from xlidx.indices.manage import ensure
        from xlidx.jobs.app import get_app
        from xlidx.jobs.options import JobOptions
        from xlidx.jobs.store import JobStore
        from xlidx.jobs.submit import enqueue
        from xlidx.pipeline.options import IngestOptions
        from xlidx.spec import IndexSpec

        app = get_app()
        store = JobStore(broker)
        index = f"bench-queued-{tag}"
        ensure(backend, IndexSpec(
            name=index, embedding={**embedding, "source": source}, text_fields=("body",),
            languages=("de", "en"), translate_to=("en",),
        ))  # fmt: skip
        opts = JobOptions(
            IngestOptions(index=index, text_fields=("body",), languages=("de", "en"),
                          translate_to=("en",), batch_size=args.batch_size),
            model=source, embedding=embedding,
            fingerprint=pipeline_fingerprint(embedding, translate_to=("en",),
                                             text_fields=("body",)),
        )  # fmt: skip
        t0 = time.perf_counter()
        sent = enqueue(items, app=app, store=store, options=opts, source="bench")
        enqueue_s = time.perf_counter() - t0
        done = _wait(store, sent.job)
        results["queued"] = _rate(done.indexed, time.perf_counter() - t0)
        results["queued"]["enqueue_seconds"] = round(enqueue_s, 2)
        results["queued"]["batches"] = sent.batches

        tiny = items[: args.tiny_batches]
        t0 = time.perf_counter()
        one = dataclasses.replace(opts, options=dataclasses.replace(opts.options, batch_size=1))
        sent = enqueue(tiny, app=app, store=store, options=one, source="bench")
        done = _wait(store, sent.job)
        wall = time.perf_counter() - t0
        results["per_task"] = {
            "batches": sent.batches,
            "unchanged": done.unchanged,
            "seconds": round(wall, 2),
            "ms_per_batch": round(1000 * wall / sent.batches, 1),
        }
        results["ratios"] = {
            "queued_vs_in_process": round(
                results["queued"]["docs_per_s"] / results["in_process"]["docs_per_s"], 2
            )
        }
        backend.delete_indices([f"{name}-v1" for name in (options.index, index)])
    finally:
        for w in procs:
            os.killpg(w.pid, signal.SIGTERM)
        for w in procs:
            w.wait(timeout=60)
        redis_proc.terminate()
        redis_proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
