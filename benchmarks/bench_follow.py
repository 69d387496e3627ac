"""Following an index: the lag under a steady write rate, and what an idle follower costs.

Runs :meth:`xlidx.Index.follow` in this process (the tiny random sentence-transformers model
of the tests, so that the figures are the follower's and not a model's; ``--model`` names
another) against the dev nodes:

* **lag**: SRC (2 shards) is written one document at a time at ``--rate`` documents a second
  for ``--seconds``, each write timed; a watcher asks DST every 0.1 s (``mget``, real time) for
  the documents not seen yet. A document's lag is the time from its write returning to the
  watcher first seeing it in DST, which the follower refreshed right after writing it: p50
  and p99 over all documents, for each ``--intervals``. The follower's own ``lag_seconds`` (the
  largest a poll reported) is given beside it.
* **idle cost**: SRC holds ``--sizes`` documents and the follower is caught up (its checkpoint
  is set at SRC's shard positions, so nothing needs embedding); ``--polls`` polls at a 0.1 s
  interval, the HTTP requests each one sends counted at the client's transport (lock renewals
  included) and its time taken from its poll report: the median per poll. Then one
  reconciliation of SRC's ids against themselves (two scrolls of N ids, what a reconciliation
  reads at that size): its seconds and requests.

Needs the dev nodes (``xlidx dev up``; ``xlidx dev up --backend elasticsearch --port 9201``)::

    .venv/bin/python benchmarks/bench_follow.py [--engines opensearch,elasticsearch]
        [--sizes 10000,100000] [--rate 20] [--seconds 60] [--intervals 1,5] [--polls 30]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from xlidx.backends import open_backend  # noqa: E402
from xlidx.backends.base import Backend  # noqa: E402
from xlidx.config import ConnectionSettings  # noqa: E402
from xlidx.errors import Interrupted  # noqa: E402
from xlidx.indices.follow_store import FollowStore  # noqa: E402
from xlidx.indices.manage import ensure  # noqa: E402
from xlidx.indices.reconcile import reconcile  # noqa: E402
from xlidx.pipeline.fingerprint import model_source  # noqa: E402
from xlidx.pipeline.follow_state import FollowCheckpoint  # noqa: E402
from xlidx.pipeline.options import IngestOptions  # noqa: E402
from xlidx.workflows import Index  # noqa: E402
from xlidx.workflows.follow import FollowOptions, PollReport  # noqa: E402
from xlidx.workflows.ingest import StopRequest  # noqa: E402
from xlidx.workflows.pipeline import index_spec  # noqa: E402

URLS = {"opensearch": "http://127.0.0.1:9200", "elasticsearch": "http://127.0.0.1:9201"}
TEXTS = (
    "The river flooded the old town after three days of heavy rain.",
    "La rivière a inondé la vieille ville après trois jours de fortes pluies.",
    "Der Fluss überschwemmte die Altstadt nach drei Tagen starken Regens.",
)
OPTIONS = IngestOptions(languages=("en", "fr", "de"), checkpoints=None)


class Counted:
    """Counts the HTTP requests a backend's client sends."""

    def __init__(self, backend: Backend) -> None:
        self.n = 0
        transport = backend.client.transport  # type: ignore[attr-defined]
        inner = transport.perform_request

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.n += 1
            return inner(*args, **kwargs)

        transport.perform_request = counted


def plain(backend: Backend, name: str, n: int) -> None:
    backend.create_index(name, {"settings": {"number_of_shards": 2, "number_of_replicas": 0}})
    actions = (
        {"_index": name, "_id": f"d{i}", "_source": {"body": f"{TEXTS[i % 3]} ({i})"}}
        for i in range(n)
    )
    for ok, item in backend.bulk(actions, chunk_size=5000, max_chunk_bytes=50_000_000,
                                 max_retries=3, initial_backoff=1, max_backoff=10):  # fmt: skip
        assert ok, item
    backend.refresh(name)


def drop(backend: Backend, src: str, dst: str) -> None:
    backend.delete_indices(backend.list_indices(f"{src}*") + backend.list_indices(f"{dst}*"))
    FollowStore(backend, src, dst).forget()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def lag_run(
    backend: Backend, embedder: Any, *, interval: float, rate: float, seconds: float
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    src, dst = f"bench-follow-src-{tag}", f"bench-follow-dst-{tag}"
    plain(backend, src, 0)
    stop, polls = StopRequest(), []
    started = threading.Event()

    def on_poll(report: PollReport) -> None:
        polls.append(report)
        started.set()

    def run() -> None:
        with contextlib.suppress(Interrupted):
            Index(backend, dst).follow(
                src, OPTIONS, FollowOptions(interval=interval, reconcile_every=3600),
                embedder=embedder, on_poll=on_poll, stop=stop,
                dead_letters=Path(tempfile.gettempdir()) / f"{dst}.dead.jsonl",
            )  # fmt: skip

    follower = threading.Thread(target=run, daemon=True)
    follower.start()
    started.wait(120)
    written: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not (done.is_set() and len(seen) == len(written)):
            waiting = [i for i in list(written) if i not in seen]
            if waiting:
                found = backend.mget(dst, waiting[:500], includes=["xlidx.id"])
                now = time.monotonic()
                for i in found:
                    seen[i] = now
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        doc_id = f"w{n}"
        backend.request("PUT", f"/{src}/_doc/{doc_id}", "write",
                        body={"body": f"{TEXTS[n % 3]} (w{n})"})  # fmt: skip
        written[doc_id] = time.monotonic()
        n += 1
        time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    done.set()
    watcher.join(120)
    stop.set()
    follower.join(120)
    lags = [seen[i] - written[i] for i in written if i in seen]
    drop(backend, src, dst)
    return {
        "interval": interval,
        "rate": rate,
        "docs": n,
        "arrived": len(lags),
        "lag_p50": round(pct(lags, 0.50), 3),
        "lag_p99": round(pct(lags, 0.99), 3),
        "lag_max": round(max(lags), 3),
        "reported_lag_max": round(max(p.lag_seconds for p in polls), 3),
        "polls": len(polls),
    }


def idle_run(backend: Backend, embedder: Any, size: int, polls: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    src, dst = f"bench-follow-src-{tag}", f"bench-follow-dst-{tag}"
    t = time.monotonic()
    plain(backend, src, size)
    load = time.monotonic() - t
    options = IngestOptions(index=dst, languages=("en", "fr", "de"), checkpoints=None)
    state, _ = ensure(backend, index_spec(options, {**embedder.describe(),
                                                    "source": model_source(embedder)}))  # fmt: skip
    heads = backend.shard_heads(src)
    caught_up = FollowCheckpoint(
        src, dst, shards={h.key: h.global_checkpoint for h in heads},
        uuids={h.index: h.uuid for h in heads}, target_index=state.index,
        target_created=str(state.xlidx_meta.get("created_at", "")),
    )  # fmt: skip
    store = FollowStore(backend, src, dst)
    store.ensure()
    store.save(caught_up)
    counter = Counted(backend)
    marks: list[tuple[int, PollReport]] = []
    Index(backend, dst).follow(
        src, OPTIONS, FollowOptions(interval=0.1, reconcile_every=3600, polls=polls),
        embedder=embedder, on_poll=lambda r: marks.append((counter.n, r)),
    )  # fmt: skip
    # the first poll also runs the start-up reconciliation: the idle ones are the rest
    per_poll = [b[0] - a[0] for a, b in itertools.pairwise(marks)]
    ms = [r.seconds * 1000 for _, r in marks[1:]]
    before = counter.n
    rec = reconcile(backend, src, src)
    first = marks[0][1]
    out = {
        "docs": size,
        "load_seconds": round(load, 1),
        "idle_requests_per_poll": statistics.median(per_poll),
        "idle_requests_max": max(per_poll),
        "idle_ms_p50": round(statistics.median(ms), 1),
        "idle_ms_p99": round(pct(ms, 0.99), 1),
        "reconcile_seconds": round(rec.seconds, 2),
        "reconcile_requests": counter.n - before,
        "first_poll_reconciled": first.reconciled.to_json() if first.reconciled else None,
    }
    drop(backend, src, dst)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="opensearch,elasticsearch")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--intervals", default="1,5")
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--model", default=None, help="default: the tests' tiny random model")
    parser.add_argument("--skip-lag", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from xlidx.pipeline.embed import load_embedder

    model = args.model
    if model is None:
        from tests.fixtures.st_builder import build_tiny_st_model

        model = str(build_tiny_st_model(Path(tempfile.mkdtemp()) / "tiny-st"))
    embedder = load_embedder(model, device="cpu")
    results: dict[str, Any] = {}
    for engine in args.engines.split(","):
        backend = open_backend(ConnectionSettings(urls=(URLS[engine],), engine=engine))
        got: dict[str, Any] = {"idle": [], "lag": []}
        for size in (int(s) for s in args.sizes.split(",")):
            got["idle"].append(idle_run(backend, embedder, size, args.polls))
            print(engine, json.dumps(got["idle"][-1]), flush=True)
        if not args.skip_lag:
            for interval in (float(i) for i in args.intervals.split(",")):
                got["lag"].append(lag_run(backend, embedder, interval=interval, rate=args.rate,
                                          seconds=args.seconds))  # fmt: skip
                print(engine, json.dumps(got["lag"][-1]), flush=True)
        results[engine] = got
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
