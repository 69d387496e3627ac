"""Ingest through the cluster's pipeline (``xlidx connect opensearch``) against ``xlidx ingest``
in-process, on the same documents, the same model and the same node, in one run.

What it measures (``--docs`` documents, default 1,000: Tatoeba sentences in French, German and
Spanish in turn, ``title`` one sentence and ``body`` the next two; CC BY 2.0 FR, the Tatoeba
project, tatoeba.org, via the LASER test sets; multilingual-e5-small on the CPU; no
translation, as this machine has no translation packages):

* ``cli cold``: ``xlidx ingest FILE --index A --model E5 --text-fields title,body`` in a
  subprocess, wall time, model load and Python's start included (for context only).
* ``in-process warm`` (the baseline): :meth:`Index.ingest <xlidx.workflows.index.Index.ingest>`
  in this process into a fresh index made with :meth:`Index.create` (16 other documents
  ingested first, untimed), the model loaded and run once before any clock starts. It is
  measured again beside every pipeline row (before it, or after it, in turn) and each row is
  divided by the baseline beside it: on a shared machine the rate moves by tens of percent
  from one minute to the next. The median of all the baselines is given too.
* ``service direct``: ``POST /indices/{name}/enrich`` of the running service, 64 documents per
  request, one client, nothing written: what the service alone does, OpenSearch left out.
* ``pipeline``: an index made with :meth:`Index.create`, ``xlidx serve --index NAME --device
  cpu`` started as a subprocess (warm: ``/health`` ok), ``xlidx connect opensearch``, a warm-up
  of 16 documents through the pipeline, then the documents written with plain REST ``_bulk``
  (httpx; ``_id`` and the text fields, no pipeline named), for each bulk size and number of
  concurrent writer threads (the grid of ``--bulk-sizes`` and ``--writers``, or the
  ``BULKxWRITERS`` pairs of ``--configs``) and each ``--max-wait-ms`` of the service (it
  restarts on the same port for each). Timed from the first write to the last acknowledged
  bulk. Then the index is refreshed and counted: every document must have ``xlidx.passages``
  and none may be ``xlidx.pending`` (a row where some are is marked incomplete: its rate
  counts documents that skipped enrichment); the reasons the pending ones give are
  collected; the documents are deleted for the next row.

Each pipeline row gives its ratio to the baseline (target >= 0.8), the batch sizes the
service's enrichment queue saw (its ``/metrics``: how many documents OpenSearch had in flight
at once; the ingest pipeline sends one document per request), the mean latency of one enrich
request, and the CPU seconds the service, the OpenSearch node and this process (the writers,
or in-process ingest) spent per 100 documents (``/proc``; the node's process is the java one
with ``-Ehttp.port=<port of --url>``).

At the end the indices are deleted and the connection taken away
(``xlidx connect opensearch --remove``). Run from the repository root, with the dev node with
ml-commons up (``.venv/bin/xlidx dev up --with-ml``)::

    .venv/bin/python benchmarks/bench_connect.py [--docs 1000] [--url http://127.0.0.1:9210]
        [--bulk-sizes 50,200] [--writers 1,4] [--max-wait-ms 0,10] [--json OUT]
    .venv/bin/python benchmarks/bench_connect.py --configs 64x1,16x4,32x2 --no-cli
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
TATOEBA = Path(os.environ.get("XLIDX_TATOEBA_DIR", "/work/shared/data/tatoeba"))
E5_SMALL_DIR = Path(
    os.environ.get("XLIDX_E5_SMALL_DIR", "~/.cache/xlidx/models/multilingual-e5-small")
).expanduser()
XLIDX = str(REPO / ".venv" / "bin" / "xlidx")
LANGS = (("fra", "fra-eng"), ("deu", "deu-eng"), ("spa", "spa-eng"))
TEXT_FIELDS = ("title", "body")
TARGET = 0.8
START_TIMEOUT_S = 300.0
WARMUP_DOCS = 16
DIRECT_BATCH = 64
ENRICH_ROUTE = "/indices/{name}/enrich"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the corpus --------------------------------------------------------------------------------
def corpus(n: int, prefix: str = "d") -> list[dict[str, Any]]:
    """``n`` documents, French, German and Spanish in turn: a title of one Tatoeba sentence
    and a body of the next two (wrapping round a language's 1,000 lines when ``n`` > 1,000)."""
    lines = {}
    for code, pair in LANGS:
        path = TATOEBA / f"tatoeba.{pair}.{code}"
        lines[code] = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x]
    out = []
    for i in range(n):
        code = LANGS[i % len(LANGS)][0]
        got, k = lines[code], 3 * (i // len(LANGS))
        title = got[k % len(got)]
        body = f"{got[(k + 1) % len(got)]} {got[(k + 2) % len(got)]}"
        out.append({"id": f"{prefix}{i}", "title": title, "body": body})
    return out


# -- processes and their CPU time --------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its waited-for children (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK  # utime stime cutime cstime


def node_pid(url: str) -> int | None:
    """The pid of the java process serving ``url``'s port (a dev node), if one is found."""
    port = url.rstrip("/").rsplit(":", 1)[-1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"java") and f"-Ehttp.port={port}".encode() in args:
            return int(proc.name)
    return None


class CpuMeter:
    """CPU seconds spent by this process, the service and the node between start and stop."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {k: v for k, v in pids.items() if v is not None}
        self.start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        t = os.times()
        out = {"client": t.user + t.system}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                out[name] = cpu_seconds(pid)
        return out

    def __enter__(self) -> CpuMeter:
        self.start = self._now()
        return self

    def used(self) -> dict[str, float]:
        end = self._now()
        return {k: round(end[k] - self.start[k], 2) for k in end if k in self.start}

    def __exit__(self, *_exc: object) -> None:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``xlidx serve`` in a subprocess (log in a file); SIGTERM to stop, then SIGKILL."""

    def __init__(self, port: int, index: str, key: str, max_wait_ms: float, env: dict[str, str]):
        self.port, self.index, self.key, self.max_wait_ms, self.env = (
            port, index, key, max_wait_ms, env,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(tempfile.gettempdir()) / f"xlidx-bench-connect-serve-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def start(self) -> None:
        cmd = [
            XLIDX, "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--index", self.index, "--api-key", self.key, "--device", "cpu",
            "--max-wait-ms", f"{self.max_wait_ms:g}", "--no-access-log",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"xlidx serve exited {self.proc.returncode} (log: {self.log})")
            with contextlib.suppress(httpx.HTTPError):
                got = httpx.get(f"{self.url}/health", timeout=2.0)
                if got.status_code == 200 and got.json().get("status") == "ok":
                    return
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"xlidx serve not healthy after {START_TIMEOUT_S:.0f} s ({self.log})")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def metrics(self) -> dict[str, float]:
        """The enrichment queue's batch-size histogram and the enrich route's requests and
        latency, from ``/metrics`` (cumulative)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.url}/metrics", headers=self.headers, timeout=10).text
        queue_name = f"enrich:{self.index}"
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = s.labels
                if family.name == "xlidx_serve_batch_size" and labels.get("queue") == queue_name:
                    if s.name.endswith("_bucket"):
                        out[f"le{labels['le']}"] = s.value
                    elif s.name.endswith("_count"):
                        out["batches"] = s.value
                    elif s.name.endswith("_sum"):
                        out["batched_docs"] = s.value
                elif family.name == "xlidx_serve_request_seconds" and (
                    labels.get("endpoint") == ENRICH_ROUTE
                ):
                    if s.name.endswith("_count"):
                        out["requests"] = s.value
                    elif s.name.endswith("_sum"):
                        out["request_seconds"] = s.value
                elif (
                    family.name == "xlidx_serve_requests"
                    and labels.get("endpoint") == ENRICH_ROUTE
                    and labels.get("status") != "200"
                ):
                    out["not_200"] = out.get("not_200", 0.0) + s.value
        return out


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    service.start()
    try:
        yield service
    finally:
        service.stop()


def batch_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """What the enrichment queue saw between two scrapes: batches, mean size, the share of
    documents in batches of each size range, and the enrich requests' mean latency."""

    def d(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    batches, docs = d("batches"), d("batched_docs")
    bounds = sorted(float(k[2:]) for k in after if k.startswith("le") and k != "le+Inf")
    hist: dict[str, int] = {}
    prev = 0.0
    for b in bounds:
        key = f"le{b}" if f"le{b}" in after else f"le{b:g}"
        cum = d(key)
        if cum - prev:
            hist[f"<={b:g}"] = int(cum - prev)
        prev = cum
    if d("le+Inf") - prev:
        hist[f">{bounds[-1]:g}"] = int(d("le+Inf") - prev)
    requests = d("requests")
    return {
        "batches": int(batches),
        "mean_batch": round(docs / batches, 2) if batches else 0.0,
        "batch_hist": hist,  # batches by size range
        "enrich_requests": int(requests),
        "mean_request_ms": round(1000 * d("request_seconds") / requests, 1) if requests else 0.0,
        "not_200": int(d("not_200")),
    }


# -- the cluster -------------------------------------------------------------------------------
def xlidx_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    got = subprocess.run(
        [XLIDX, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if got.returncode != 0:
        raise SystemExit(f"xlidx {' '.join(args[:2])} failed ({got.returncode}):\n{got.stderr}")
    return got.stdout


def current_index(http: httpx.Client, alias: str) -> str:
    got = http.get(f"/_alias/{alias}")
    got.raise_for_status()
    return str(next(iter(got.json())))


def count(http: httpx.Client, index: str, query: dict[str, Any] | None = None) -> int:
    body = {"query": query} if query else None
    got = http.post(f"/{index}/_count", json=body)
    got.raise_for_status()
    return int(got.json()["count"])


def check_index(http: httpx.Client, index: str) -> dict[str, Any]:
    """Documents in ``index``, those with passages, those left ``xlidx.pending``, and the
    reasons the pending ones give (each cut to 160 characters, with its count)."""
    http.post(f"/{index}/_refresh").raise_for_status()
    with_passages = {"nested": {"path": "xlidx.passages", "query": {"match_all": {}}}}
    pending = {"exists": {"field": "xlidx.pending"}}
    out: dict[str, Any] = {
        "docs": count(http, index),
        "with_passages": count(http, index, with_passages),
        "pending": count(http, index, pending),
    }
    if out["pending"]:
        got = http.post(
            f"/{index}/_search",
            json={"query": pending, "size": 10000, "_source": ["xlidx.pending.reason"]},
        )
        got.raise_for_status()
        reasons = Counter(
            str(h["_source"]["xlidx"]["pending"].get("reason"))[:160]
            for h in got.json()["hits"]["hits"]
        )
        out["pending_reasons"] = dict(reasons.most_common(5))
    return out


def empty_index(http: httpx.Client, index: str, ids: list[str]) -> None:
    """Delete ``ids`` from ``index`` (the dev node has no ``_delete_by_query``: no reindex
    module) and refresh; deletes go through no pipeline."""
    for start in range(0, len(ids), 500):
        lines = [
            json.dumps({"delete": {"_index": index, "_id": i}}) for i in ids[start : start + 500]
        ]
        got = http.post(
            "/_bulk", content=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "application/x-ndjson"}, timeout=300,
        )  # fmt: skip
        got.raise_for_status()
    http.post(f"/{index}/_refresh").raise_for_status()
    left = count(http, index)
    if left:
        raise SystemExit(f"{left} documents left in {index} after emptying it")


def bulk_body(index: str, docs: list[dict[str, Any]]) -> bytes:
    """A plain ``_bulk`` body, as an application writes: ``_id`` from the id, the text fields
    as the source, no pipeline named (the index's default pipeline applies)."""
    lines = []
    for doc in docs:
        lines.append(json.dumps({"index": {"_index": index, "_id": doc["id"]}}))
        lines.append(json.dumps({k: doc[k] for k in TEXT_FIELDS}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Written:
    seconds: float
    bulks: int
    item_errors: int
    errors: list[str] = field(default_factory=list)


def write_bulks(
    url: str, index: str, docs: list[dict[str, Any]], bulk_size: int, writers: int
) -> Written:
    """``docs`` with plain ``_bulk`` requests of ``bulk_size`` from ``writers`` threads (each
    takes the next bulk when its last is acknowledged); first write to last acknowledged."""
    jobs: queue.Queue[bytes] = queue.Queue()
    for start in range(0, len(docs), bulk_size):
        jobs.put(bulk_body(index, docs[start : start + bulk_size]))
    bulks = jobs.qsize()
    lock = threading.Lock()
    item_errors = [0]
    errors: list[str] = []
    headers = {"Content-Type": "application/x-ndjson"}

    def work() -> None:
        with httpx.Client(base_url=url, timeout=600, headers=headers) as http:
            while True:
                try:
                    body = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    got = http.post("/_bulk", content=body)
                    got.raise_for_status()
                    answer = got.json()
                except (httpx.HTTPError, ValueError) as exc:
                    with lock:
                        errors.append(str(exc))
                    continue
                if answer.get("errors"):
                    bad = [i for i in answer["items"] if "error" in next(iter(i.values()))]
                    with lock:
                        item_errors[0] += len(bad)
                        errors.extend(json.dumps(b)[:300] for b in bad[:3])

    threads = [threading.Thread(target=work, name=f"writer-{i}") for i in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Written(time.perf_counter() - t0, bulks, item_errors[0], errors)


def service_direct(service: Service, docs: list[dict[str, Any]]) -> float:
    """Seconds for the service to enrich ``docs``, :data:`DIRECT_BATCH` per request, one
    client, nothing written."""
    with httpx.Client(base_url=service.url, headers=service.headers, timeout=600) as http:
        t0 = time.perf_counter()
        for start in range(0, len(docs), DIRECT_BATCH):
            part = docs[start : start + DIRECT_BATCH]
            body = {
                "documents": [
                    {"id": d["id"], "source": {k: d[k] for k in TEXT_FIELDS}} for d in part
                ]
            }
            got = http.post(f"/indices/{service.index}/enrich", json=body)
            got.raise_for_status()
            answers = got.json()["documents"]
            failed = [a for a in answers if a.get("error")]
            if failed:
                raise SystemExit(f"the service failed to enrich: {failed[:3]}")
        return time.perf_counter() - t0


# -- the run -----------------------------------------------------------------------------------
def parse_list(text: str, kind: type[float] | type[int]) -> list[Any]:
    return [kind(x) for x in text.split(",") if x.strip()]


def configs(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(bulk size, writers) pairs: ``--configs``, else every bulk size with every writer count."""
    if args.configs:
        return [(int(b), int(w)) for b, _, w in (c.partition("x") for c in args.configs)]
    return [(b, w) for b in args.bulk_sizes for w in args.writers]


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 2) if seconds > 0 else 0.0


def per_100(cpu: dict[str, float], n: int) -> dict[str, float]:
    return {k: round(100 * v / n, 2) for k, v in cpu.items()}


@dataclass
class Bench:
    """What every measurement of one run shares."""

    url: str
    docs: list[dict[str, Any]]
    warm: list[dict[str, Any]]
    tag: str
    cluster: Any
    http: httpx.Client
    embedder: Any
    node: int | None
    made: list[str] = field(default_factory=list)  # indices to delete at the end

    def in_process(self, n: int) -> dict[str, Any]:
        """The baseline: ``Index.ingest`` of the documents into a fresh index (made with
        ``Index.create``, then 16 other documents ingested untimed), the model warm."""
        from xlidx.pipeline.options import IngestOptions

        name = f"bench-connect-inproc{n}-{self.tag}"
        self.made.append(name)
        index = self.cluster.index(name)
        index.create(model=str(E5_SMALL_DIR), device="cpu", text_fields=TEXT_FIELDS)
        options = IngestOptions(index=name, text_fields=TEXT_FIELDS, checkpoints=None)
        index.ingest(self.warm, options, embedder=self.embedder, device="cpu")
        with CpuMeter({"node": self.node}) as meter:
            t0 = time.perf_counter()
            summary = index.ingest(self.docs, options, embedder=self.embedder, device="cpu")
            seconds = time.perf_counter() - t0
            cpu = meter.used()
        got = check_index(self.http, current_index(self.http, name))
        index.delete()
        self.made.remove(name)
        return {
            "seconds": round(seconds, 2),
            "docs_per_s": rate(len(self.docs), seconds),
            "indexed": summary.indexed,
            "complete": got["with_passages"] == len(self.docs) + len(self.warm),
            "cpu_s_per_100_docs": per_100(cpu, len(self.docs)),
            "loadavg": round(os.getloadavg()[0], 2),
        }

    def pipeline(
        self, service: Service, index: str, bulk_size: int, writers: int
    ) -> dict[str, Any]:
        """The documents written with plain ``_bulk`` to the connected index, then checked
        and deleted again."""
        n = len(self.docs)
        pids = {"service": service.proc.pid if service.proc else None, "node": self.node}
        before = service.metrics()
        with CpuMeter(pids) as meter:
            w = write_bulks(self.url, service.index, self.docs, bulk_size, writers)
            cpu = meter.used()
        after = service.metrics()
        got = check_index(self.http, index)
        empty_index(self.http, index, [d["id"] for d in self.docs])
        return {
            "bulk_size": bulk_size,
            "writers": writers,
            "max_wait_ms": service.max_wait_ms,
            "seconds": round(w.seconds, 2),
            "docs_per_s": rate(n, w.seconds),
            "bulk_requests": w.bulks,
            "item_errors": w.item_errors,
            "request_errors": w.errors[:5],
            "check": got,
            "complete": got["docs"] == n and got["with_passages"] == n and got["pending"] == 0,
            "service": batch_summary(before, after),
            "cpu_s_per_100_docs": per_100(cpu, n),
            "loadavg": round(os.getloadavg()[0], 2),
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from xlidx.workflows import Cluster

    url = args.url.rstrip("/")
    docs = corpus(args.docs)
    tag = uuid.uuid4().hex[:6]
    key = f"bench-{uuid.uuid4().hex}"
    env = {**os.environ, "XLIDX_URL": url}
    env.pop("XLIDX_SERVE_API_KEY", None)
    work = Path(tempfile.mkdtemp(prefix="xlidx-bench-connect-"))
    data = work / "docs.jsonl"
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    out: dict[str, Any] = {
        "docs": args.docs,
        "url": url,
        "model": str(E5_SMALL_DIR),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "translation": "none (no translation packages on this machine)",
    }
    cluster = Cluster.connect(url)
    http = httpx.Client(base_url=url, timeout=120)
    bench: Bench | None = None
    service: Service | None = None
    pipe_name = f"bench-connect-pipe-{tag}"
    connected = False
    try:
        if not args.no_cli:  # context only: Python's start and the model's load included
            name = f"bench-connect-cli-{tag}"
            print(f"cli cold: xlidx ingest {args.docs} docs ...", file=sys.stderr)
            t0 = time.perf_counter()
            try:
                xlidx_cli(
                    ["ingest", str(data), "--index", name, "--model", str(E5_SMALL_DIR),
                     "--text-fields", ",".join(TEXT_FIELDS), "--device", "cpu"],
                    env, work,
                )  # fmt: skip
                seconds = time.perf_counter() - t0
            finally:
                with contextlib.suppress(Exception):
                    cluster.index(name).delete()
            out["cli_cold"] = {"seconds": round(seconds, 2), "docs_per_s": rate(args.docs, seconds)}

        t0 = time.perf_counter()
        embedder = cluster.embedder(str(E5_SMALL_DIR), "cpu")
        embedder.encode_document(["warm-up"])
        out["model_load_s"] = round(time.perf_counter() - t0, 2)
        bench = Bench(
            url, docs, corpus(WARMUP_DOCS, prefix="warm"), tag, cluster, http, embedder,
            node_pid(url),
        )  # fmt: skip
        out["node_pid_found"] = bench.node is not None
        baselines: list[dict[str, Any]] = []

        def baseline() -> dict[str, Any]:
            assert bench is not None
            print("in-process ...", file=sys.stderr)
            row = bench.in_process(len(baselines))
            baselines.append(row)
            print(f"  {row['docs_per_s']} docs/s", file=sys.stderr)
            return row

        pipe = cluster.index(pipe_name)
        pipe.create(model=str(E5_SMALL_DIR), device="cpu", text_fields=TEXT_FIELDS)
        bench.made.append(pipe_name)
        concrete = current_index(http, pipe_name)
        port = args.port or free_port()
        rows: list[dict[str, Any]] = []
        for wait_ms in args.max_wait_ms:
            service = Service(port, pipe_name, key, wait_ms, env)
            with running(service):
                if not connected:
                    print("xlidx connect opensearch ...", file=sys.stderr)
                    xlidx_cli(
                        ["connect", "opensearch", "--index", pipe_name, "--serve",
                         service.url, "--api-key", key, "--json"],
                        env, work,
                    )  # fmt: skip
                    connected = True
                if "service_direct" not in out:
                    print("service direct ...", file=sys.stderr)
                    base = baseline()
                    service_direct(service, bench.warm)
                    with CpuMeter({"service": service.proc.pid if service.proc else None}) as m:
                        direct_s = service_direct(service, docs)
                        cpu = m.used()
                    out["service_direct"] = {
                        "seconds": round(direct_s, 2),
                        "docs_per_s": rate(args.docs, direct_s),
                        "baseline_docs_per_s": base["docs_per_s"],
                        "ratio": round(rate(args.docs, direct_s) / base["docs_per_s"], 3),
                        "cpu_s_per_100_docs": per_100(cpu, args.docs),
                    }
                    print(f"  {out['service_direct']['docs_per_s']} docs/s", file=sys.stderr)
                # warm the path: painless, ml-commons' HTTP client, the service's queue
                write_bulks(url, pipe_name, bench.warm, WARMUP_DOCS, 1)
                empty_index(http, concrete, [d["id"] for d in bench.warm])
                for bulk_size, writers in configs(args):
                    label = f"bulk {bulk_size}, {writers} writer(s), wait {wait_ms:g} ms"
                    first = len(rows) % 2 == 0  # the baseline goes first every other time
                    base = baseline() if first else {}
                    print(f"pipeline: {label} ...", file=sys.stderr)
                    row = bench.pipeline(service, concrete, bulk_size, writers)
                    if not first:
                        base = baseline()
                    row["baseline_docs_per_s"] = base["docs_per_s"]
                    row["ratio"] = round(row["docs_per_s"] / base["docs_per_s"], 3)
                    rows.append(row)
                    c = row["check"]
                    print(
                        f"  {row['docs_per_s']} docs/s ({row['ratio']}x), "
                        f"{c['with_passages']} enriched, {c['pending']} pending",
                        file=sys.stderr,
                    )
        out["pipeline"] = rows
        out["in_process"] = baselines
    finally:
        if connected:
            with contextlib.suppress(SystemExit):
                xlidx_cli(["connect", "opensearch", "--index", pipe_name, "--remove"], env,
                          work)  # fmt: skip
        if service is not None:
            service.stop()
        for name in bench.made if bench else []:
            with contextlib.suppress(Exception):
                cluster.index(name).delete()
        http.close()
        with contextlib.suppress(OSError):
            for p in work.iterdir():
                p.unlink()
            work.rmdir()
    rates = sorted(b["docs_per_s"] for b in out["in_process"])
    out["in_process_median_docs_per_s"] = rates[len(rates) // 2]
    out["target"] = TARGET
    complete = [r["ratio"] for r in out["pipeline"] if r["complete"]]
    out["best_complete_ratio"] = max(complete, default=0.0)
    out["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def table(result: dict[str, Any]) -> str:
    sd = result["service_direct"]
    base = result["in_process"]
    cli = result.get("cli_cold")
    median = result["in_process_median_docs_per_s"]
    lines = [
        f"## xlidx connect: {result['docs']} documents (fr/de/es Tatoeba, e5-small, CPU)",
        "",
        f"Machine: {result['machine']['cpus']} CPUs, load average at start "
        f"{result['machine']['loadavg_at_start']}, at end {result['loadavg_at_end']}. "
        f"Model load + first encode (in-process): {result['model_load_s']} s.",
        f"In-process warm ingest (the baseline, {len(base)} runs, each beside the row it "
        f"divides): {', '.join(str(b['docs_per_s']) for b in base)} docs/s, median "
        f"{result['in_process_median_docs_per_s']}; CPU s / 100 docs (this process, node): "
        + "; ".join(_cpu(b["cpu_s_per_100_docs"], ("client", "node")) for b in base)
        + ".",
    ]
    if cli:
        lines.append(
            f"`xlidx ingest` CLI, cold: {cli['seconds']} s, {cli['docs_per_s']} docs/s "
            "(Python's start and the model's load included)."
        )
    lines += [
        "",
        "| run | docs/s | baseline beside it | ratio to it (to the median) | enriched / pending "
        "| enrich batches: mean (count by size) | mean enrich ms "
        "| CPU s / 100 docs (writers, service, node) |",
        "|---|---|---|---|---|---|---|---|",
        f"| service direct (enrich, {DIRECT_BATCH}/request, nothing written) "
        f"| {sd['docs_per_s']} | {sd['baseline_docs_per_s']} | {sd['ratio']:.2f} "
        f"({sd['docs_per_s'] / median:.2f}) | | | "
        f"| {_cpu(sd['cpu_s_per_100_docs'], ('client', 'service'))} |",
    ]
    for r in result["pipeline"]:
        s = r["service"]
        hist = ", ".join(f"{k}: {v}" for k, v in s["batch_hist"].items())
        c = r["check"]
        both = f"{r['ratio']:.2f} ({r['docs_per_s'] / median:.2f})"
        ratio = f"**{both}**" if r["complete"] else f"{both}, incomplete"
        lines.append(
            f"| pipeline: bulk {r['bulk_size']} x {r['writers']} writer(s) "
            f"({r['bulk_size'] * r['writers']} in flight), wait {r['max_wait_ms']:g} ms "
            f"| {r['docs_per_s']} | {r['baseline_docs_per_s']} "
            f"| {ratio} | {c['with_passages']} / {c['pending']} | {s['mean_batch']} ({hist}) "
            f"| {s['mean_request_ms']} "
            f"| {_cpu(r['cpu_s_per_100_docs'], ('client', 'service', 'node'))} |"
        )
    reasons: Counter[str] = Counter()
    for r in result["pipeline"]:
        reasons.update(r["check"].get("pending_reasons", {}))
    if reasons:
        lines += ["", "Why documents were left pending (count, reason):"]
        lines += [f"- {n}: {reason}" for reason, n in reasons.most_common(5)]
    best = result["best_complete_ratio"]
    verdict = "met" if best >= TARGET else "not met"
    lines += ["", f"Best ratio of a complete run {best:.2f} (target >= {TARGET}: {verdict})."]
    return "\n".join(lines)


def _cpu(cpu: dict[str, float], keys: tuple[str, ...]) -> str:
    return ", ".join(str(cpu.get(k, "-")) for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--url", default="http://127.0.0.1:9210", help="OpenSearch with ml")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--bulk-sizes", type=lambda s: parse_list(s, int), default=[50, 200])
    parser.add_argument("--writers", type=lambda s: parse_list(s, int), default=[1, 4])
    parser.add_argument("--max-wait-ms", type=lambda s: parse_list(s, float), default=[0.0, 10.0])
    parser.add_argument(
        "--configs",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        help="BULKxWRITERS pairs, e.g. 16x4,64x1 (instead of the grid of the two above)",
    )
    parser.add_argument("--port", type=int, default=0, help="the service's port (0: free)")
    parser.add_argument("--no-cli", action="store_true", help="skip the cold CLI run")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    result = run(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
