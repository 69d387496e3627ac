"""Queued ingest under load with faults: nothing lost, nothing twice, and what faults cost.

One run, measured against its own baseline: a private 3-node OpenSearch dev cluster
(``xlidx dev up --nodes 3`` code, 512m heap each), a private ``redis-server``, and two
``xlidx worker`` processes per queue (six in all, concurrency 1 each, the tiny random
sentence-transformers model of the tests, no translation). The index has 3 shards and 1
replica. The same corpus (``--docs``, default 20,000 short documents in three languages) is
ingested twice with ``xlidx ingest --queue --wait``, into two fresh indices, after a warm-up
job of ``--warmup`` documents (default 4,000; without it the first run pays for the cluster's
and the workers' cold start, which in a first try made the faults run 1.16x *faster*):

* ``baseline``: no faults;
* ``faults``: on a schedule set from the baseline's duration, an embed worker is SIGKILLed
  (main and pool process) and started again 5 s later; a cluster node (the one that holds
  the most primaries) is SIGKILLed and started again 15 s later; a write worker is SIGKILLed
  and started again 5 s later.

Reported per run: documents sent, documents in the index, distinct ids, the job's own
counters (indexed + unchanged, dead-lettered), throughput, and the longest stall (the
longest time the job's done-document count did not move). Duplicates are counted as the
index count minus the distinct ids (ids are fixed, so a second write of a document replaces
it) plus what the job counted over the documents sent.

    .venv/bin/python benchmarks/bench_faults.py [--docs 20000] [--batch-size 100] [--port 9250]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_queue import _start_redis  # noqa: E402

SENTENCES = [
    "The river flooded the old town after three days of heavy rain.",
    "La rivière a inondé la vieille ville après trois jours de fortes pluies.",
    "Der Fluss überschwemmte die Altstadt nach drei Tagen starken Regens.",
]


def _corpus(path: Path, n: int) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            row = {"id": f"d{i}", "title": f"{i}", "body": f"{SENTENCES[i % 3]} ({i})"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
    return {**base, "NO_COLOR": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


class Worker:
    def __init__(self, queue: str, n: int, env: dict[str, str], model: Path, logs: Path) -> None:
        self.queue, self.name = queue, f"{queue}-{n}"
        self.env, self.model, self.log = env, model, logs / f"{queue}-{n}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "xlidx", "worker", "--queues", self.queue,
                 "--concurrency", "1", "--device", "cpu", "--model", str(self.model),
                 "--name", f"{self.name}@bench"],
                env=self.env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while "worker process ready" not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise SystemExit(f"worker {self.name} not ready: see {self.log}")
            time.sleep(0.3)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def _busiest_node(cluster: Any, index: str) -> int:
    """The node holding the most primaries of ``index`` (the cluster tests' count)."""
    from tests.fixtures.cluster import Cluster

    held = Cluster(cluster).primaries(index)
    return max(held, key=lambda i: held[i]) if held else 1


def _ids(urls: tuple[str, ...], index: str) -> tuple[int, int]:
    """(documents in the index, distinct ids), read with a scroll."""
    from opensearchpy import OpenSearch, helpers

    client = OpenSearch(list(urls), timeout=60)
    client.indices.refresh(index=index)
    count = int(client.count(index=index)["count"])
    ids = {h["_id"] for h in helpers.scan(client, index=index, _source=False, size=2000)}
    return count, len(ids)


def _run(
    label: str,
    src: Path,
    n: int,
    env: dict[str, str],
    cluster: Any,
    workers: dict[str, list[Worker]],
    args: argparse.Namespace,
    schedule: list[tuple[float, str]],
) -> dict[str, Any]:
    from xlidx.devnode.cluster import kill_node, start_node
    from xlidx.jobs.store import JobStore

    index = f"bench-faults-{label}-{uuid.uuid4().hex[:6]}"
    create = subprocess.run(
        [sys.executable, "-m", "xlidx", "index", "create", index, "--model", str(args.model),
         "--shards", "3", "--replicas", "1", "--device", "cpu"],
        env=env, cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if create.returncode != 0:
        raise SystemExit(f"index create failed: {create.stderr}")
    store = JobStore(env["XLIDX_BROKER_URL"])
    events: list[str] = []
    stall = {"longest": 0.0, "last": time.monotonic(), "done": -1}
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            jobs = store.recent_jobs(1)
            now = time.monotonic()
            if jobs and jobs[0].index == index:
                done = jobs[0].docs_done
                if done != stall["done"]:
                    stall["longest"] = max(stall["longest"], now - stall["last"])
                    stall["last"], stall["done"] = now, done
            time.sleep(0.25)

    def faults(t0: float) -> None:
        for at, what in schedule:
            while time.monotonic() - t0 < at:
                if finished.is_set():
                    return
                time.sleep(0.2)
            stamp = f"{time.monotonic() - t0:6.1f}s"
            if what.startswith("worker:"):
                w = workers[what.split(":")[1]][0]
                w.kill()
                events.append(f"{stamp} SIGKILL worker {w.name}")
                time.sleep(5)
                w.start()
                events.append(f"{time.monotonic() - t0:6.1f}s started worker {w.name} again")
            elif what == "node":
                i = _busiest_node(cluster, index)
                kill_node(cluster, i)
                events.append(f"{stamp} SIGKILL node {cluster.ports[i]}")
                time.sleep(15)
                start_node(cluster, i, heap="512m", timeout=300)
                events.append(f"{time.monotonic() - t0:6.1f}s node {cluster.ports[i]} rejoined")

    t0 = time.monotonic()
    threads = [threading.Thread(target=watch, daemon=True)]
    if schedule:
        threads.append(threading.Thread(target=faults, args=(t0,), daemon=True))
    for t in threads:
        t.start()
    proc = subprocess.run(
        [sys.executable, "-m", "xlidx", "ingest", str(src), "--index", index, "--queue",
         "--wait", "--json", "--batch-size", str(args.batch_size)],
        env=env, cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    finished.set()
    for t in threads:
        t.join(timeout=400)
    try:
        summary = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"ingest failed ({proc.returncode}): {proc.stderr[-2000:]}") from None
    count, distinct = _ids(cluster.urls, index)
    job_docs = int(summary["indexed"]) + int(summary["unchanged"])
    return {
        "run": label,
        "exit": proc.returncode,
        "sent": n,
        "in_index": count,
        "distinct_ids": distinct,
        "duplicates": (count - distinct) + max(0, job_docs - n),
        "job_indexed": summary["indexed"],
        "job_unchanged": summary["unchanged"],
        "dead_lettered": summary["dead_lettered"],
        "seconds": round(seconds, 1),
        "docs_per_s": round(n / seconds, 1),
        "longest_stall_s": round(stall["longest"], 1),
        "events": events,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--port", type=int, default=9250, help="first HTTP port of the cluster")
    ap.add_argument("--warmup", type=int, default=4000, help="documents of the warm-up job")
    args = ap.parse_args()

    from tests.fixtures.st_builder import build_tiny_st_model
    from xlidx.devnode.cluster import DevCluster, start_cluster, stop_cluster

    tmp = Path(tempfile.mkdtemp(prefix="xlidx-bench-faults-"))
    args.model = build_tiny_st_model(tmp / "model")
    cluster = DevCluster.from_env(args.port, nodes=3)
    redis_proc, redis_url = _start_redis(tmp)
    all_workers: list[Worker] = []
    try:
        print(f"starting a 3-node cluster on {', '.join(cluster.urls)}", file=sys.stderr)
        start_cluster(cluster, heap="512m", fresh=True, timeout=400)
        env = _env({
            "XLIDX_URL": ",".join(cluster.urls),
            "XLIDX_BROKER_URL": redis_url,
            "XLIDX_VISIBILITY_TIMEOUT": "90",
            "XLIDX_TASK_TIME_LIMIT": "60",
            "XLIDX_RETRY_BACKOFF_MAX": "10",
            "XLIDX_RECOVER_AFTER": "45",
            "XLIDX_HOME": str(tmp / "home"),
        })  # fmt: skip
        workers = {
            q: [Worker(q, i, env, args.model, tmp) for i in range(2)]
            for q in ("translate", "embed", "write")
        }
        all_workers = [w for ws in workers.values() for w in ws]
        for w in all_workers:
            w.start()
        for w in all_workers:
            w.wait_ready()
        src = _corpus(tmp / "docs.jsonl", args.docs)
        if args.warmup:
            warm = _corpus(tmp / "warmup.jsonl", args.warmup)
            _run("warmup", warm, args.warmup, env, cluster, workers, args, [])
        base = _run("baseline", src, args.docs, env, cluster, workers, args, [])
        d = base["seconds"]
        schedule = [(0.2 * d, "worker:embed"), (0.4 * d, "node"), (0.65 * d, "worker:write")]
        hurt = _run("faults", src, args.docs, env, cluster, workers, args, schedule)
        for r in (base, hurt):
            print(json.dumps(r))
        print(
            json.dumps(
                {
                    "throughput_faults_vs_baseline": round(
                        hurt["docs_per_s"] / base["docs_per_s"], 3
                    ),
                    "lost": hurt["sent"] - hurt["distinct_ids"],
                }
            )
        )
    finally:
        for w in all_workers:
            w.stop()
        stop_cluster(cluster)
        redis_proc.terminate()
        redis_proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
