"""Query latency: xlidx's ``Searcher.search`` against the same requests sent with the engine's
own client library (opensearch-py or elasticsearch-py, by the engine at ``--url``).

Data: Tatoeba EN-FR (``/work/shared/data/tatoeba``; sentences CC BY 2.0 FR by the Tatoeba
project, tatoeba.org, and its contributors, via the LASER test sets). The 1000 French sentences
are the documents (index ``xlidx-bench-tatoeba-fr``, created or reused: unchanged documents
are skipped), the English sentences the queries. Model: the real multilingual-e5-small (see
``tests/fixtures/embedding.py``; ``XLIDX_E5_SMALL_DIR`` overrides its place).

For each configuration every query runs once through xlidx and once directly (alternating
which goes first), after a warm-up. Query vectors are encoded beforehand and given with
``Query.vector``, so both sides do the same work; xlidx still fills in the index's text fields,
picks the fusion weights, builds the body and turns the response into hits. The direct
request is built with the same body builders and checked equal to what xlidx sent.

* ``bm25``, ``knn``: one ``_search``.
* ``hybrid``: the default (on this index BM25 reaches no English text, so xlidx gates it off
  and runs kNN alone).
* ``hybrid-server``: weights 0.5/0.5, fused on the server (OpenSearch: ``hybrid`` query + search
  pipeline; Elasticsearch: the ``linear`` retriever); left out where the cluster cannot.
* ``hybrid-client``: weights 0.5/0.5, fused by xlidx (one ``_msearch``, then min-max fusion).

Query encoding is timed apart: one query at a time (torch's default threads, then one
thread), and in batches of 32.

Run from the repository root: ``python benchmarks/bench_query.py --url http://127.0.0.1:9200``
(``--url http://127.0.0.1:9201`` for the Elasticsearch dev node).
Prints JSON, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TATOEBA = Path(os.environ.get("XLIDX_TATOEBA_DIR", "/work/shared/data/tatoeba"))
E5_SMALL_DIR = Path(
    os.environ.get("XLIDX_E5_SMALL_DIR", "~/.cache/xlidx/models/multilingual-e5-small")
).expanduser()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(pct(values, 50), 3),
        "p95": round(pct(values, 95), 3),
        "mean": round(statistics.fmean(values), 3),
    }


class Recorder:
    """Records the requests a client sends (method, url, params, body), when switched on."""

    def __init__(self, client: Any) -> None:
        self.on = False
        self.seen: list[tuple[Any, ...]] = []
        original = client.transport.perform_request

        def perform(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if self.on:
                self.seen.append((method, url, kwargs.get("params"), kwargs.get("body"), args))
            return original(method, url, *args, **kwargs)

        client.transport.perform_request = perform

    def capture(self, fn: Callable[[], Any]) -> list[tuple[Any, ...]]:
        self.seen, self.on = [], True
        try:
            fn()
        finally:
            self.on = False
        return self.seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("XLIDX_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", default="xlidx-bench-tatoeba-fr")
    parser.add_argument("--queries", type=int, default=1000, help="at most 1000")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--model", default=str(E5_SMALL_DIR))
    args = parser.parse_args()

    from xlidx.backends import open_backend
    from xlidx.config import ConnectionSettings
    from xlidx.documents import RawItem
    from xlidx.pipeline.embed import load_embedder
    from xlidx.query.hybrid import fuse
    from xlidx.query.plan import Query
    from xlidx.search import Searcher
    from xlidx.workflows.ingest import IngestOptions, ingest

    fr = (TATOEBA / "tatoeba.fra-eng.fra").read_text(encoding="utf-8").splitlines()
    en = (TATOEBA / "tatoeba.fra-eng.eng").read_text(encoding="utf-8").splitlines()
    texts = en[: args.queries]
    settings = ConnectionSettings(urls=(args.url,))
    backend = open_backend(settings)
    client = backend.client
    es = backend.engine == "elasticsearch"
    embedder = load_embedder(args.model, device="cpu")

    t0 = time.perf_counter()
    items = [
        RawItem(origin=f"fra:{i}", payload={"id": f"fr-{i}", "text": t, "lang": "fr"})
        for i, t in enumerate(fr, 1)
    ]
    ing = ingest(
        items,
        backend=backend,
        options=IngestOptions(index=args.index, languages=("en", "fr")),
        embedder=embedder,
    )
    ingest_s = time.perf_counter() - t0

    # -- query encoding ---------------------------------------------------------------------
    embedder.encode_query(texts[:8])  # warm up
    single: list[float] = []
    for text in texts[:100]:
        t = time.perf_counter()
        embedder.encode_query([text])
        single.append((time.perf_counter() - t) * 1000)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy machine torch's thread pool can be far slower
    single_1t: list[float] = []
    for text in texts[:100]:
        t = time.perf_counter()
        embedder.encode_query([text])
        single_1t.append((time.perf_counter() - t) * 1000)
    torch.set_num_threads(threads)
    t = time.perf_counter()
    vectors: list[list[float]] = []
    for start in range(0, len(texts), 32):
        vectors.extend(
            [float(x) for x in v] for v in embedder.encode_query(texts[start : start + 32])
        )
    batched_ms = (time.perf_counter() - t) * 1000 / len(texts)

    # -- search -------------------------------------------------------------------------------
    searcher = Searcher(backend, args.index, embedder=embedder)
    index = searcher.state().index
    recorder = Recorder(client)
    configs: dict[str, dict[str, Any]] = {
        "bm25": {"mode": "bm25"},
        "knn": {"mode": "knn"},
        "hybrid": {"mode": "hybrid"},
        "hybrid-server": {"mode": "hybrid", "weights": (0.5, 0.5), "fuse_on": "server"},
        "hybrid-client": {"mode": "hybrid", "weights": (0.5, 0.5), "fuse_on": "client"},
    }
    if not backend.server_fusion_supported("minmax", (0.5, 0.5)):
        del configs["hybrid-server"]
    results: dict[str, Any] = {}
    for name, cfg in configs.items():
        prepared = []
        for text, vec in zip(texts, vectors, strict=True):
            q = Query(text).k(args.k).query_lang("en").vector(vec).mode(cfg["mode"])
            if "weights" in cfg:
                q = q.fusion("minmax", cfg["weights"])
            prepared.append(searcher.prepare(q)[0])
        fuse_on = cfg.get("fuse_on")

        def via_xlidx(q: Query, fuse_on: str | None = fuse_on) -> Any:
            return searcher.search(q, fuse_on=fuse_on)

        first = via_xlidx(prepared[0])  # creates the search pipeline, caches index facts
        weights = first.weights

        def direct(q: Query, weights: Any = weights, fuse_on: str | None = fuse_on) -> Any:
            """The same requests, sent with the client library alone (bodies from the same
            renderers; the recorder checks that the requests are identical)."""
            plan = q.plan()
            if plan.mode == "bm25":
                return client.search(index=index, body=backend.bm25_body(plan))
            if plan.mode == "knn" or (weights is not None and weights[0] == 0.0):
                body = backend.knn_body(plan, size=plan.offset + plan.size, offset=0)
                return client.search(index=index, body=body)
            if fuse_on == "client":
                w = plan.window
                lines = [
                    {"index": index},
                    backend.bm25_body(plan, size=w, offset=0, lean=True),
                    {"index": index},
                    backend.knn_body(plan, size=w, offset=0, lean=True),
                ]
                res = client.msearch(searches=lines) if es else client.msearch(body=lines)
                lists = [
                    [(h["_id"], float(h["_score"])) for h in r["hits"]["hits"]]
                    for r in res["responses"]
                ]
                page = fuse(plan, lists[0], lists[1], weights)[: plan.size]
                ids = [f.id for f in page]
            elif es:
                from xlidx.backends.elasticsearch.query import retriever_body

                res = client.search(index=index, body=retriever_body(plan, weights, lean=True))
                ids = [h["_id"] for h in res["hits"]["hits"][: plan.size]]
            else:
                from xlidx.backends.opensearch.query import hybrid_body, pipeline_name

                pipe = pipeline_name(plan.fusion, weights, plan.rank_constant)
                res = client.search(
                    index=index,
                    body=hybrid_body(plan, lean=True),
                    params={"search_pipeline": pipe},
                )
                ids = [h["_id"] for h in res["hits"]["hits"][: plan.size]]
            if es:
                return client.mget(index=index, ids=ids, source_excludes=["xlidx.passages"])
            mget_params = {"_source_excludes": "xlidx.passages"}
            return client.mget(index=index, body={"ids": ids}, params=mget_params)

        sent = recorder.capture(partial(via_xlidx, prepared[1]))
        again = recorder.capture(partial(direct, prepared[1]))
        identical = sent == again
        if not identical:
            raise SystemExit(f"{name}: the direct request differs from xlidx's:\n{sent}\n{again}")

        for q in prepared[: args.warmup]:
            via_xlidx(q)
            direct(q)
        ours: list[float] = []
        theirs: list[float] = []
        for i, q in enumerate(prepared):
            order = [(via_xlidx, ours), (direct, theirs)]
            for fn, sink in order if i % 2 == 0 else order[::-1]:
                t = time.perf_counter()
                fn(q)
                sink.append((time.perf_counter() - t) * 1000)
        paired = [a - b for a, b in zip(ours, theirs, strict=True)]
        x, d = summary(ours), summary(theirs)
        results[name] = {
            "xlidx_ms": x,
            "direct_ms": d,
            "overhead_ms_p50": round(x["p50"] - d["p50"], 3),
            "overhead_pct_p50": round(100 * (x["p50"] - d["p50"]) / d["p50"], 1),
            "paired_diff_ms_p50": round(pct(paired, 50), 3),
            "requests": len(sent),
            "weights": list(weights) if weights else None,
            "fused_on": first.fused_on,
        }

    report = {
        "benchmark": f"query latency, xlidx Searcher.search vs {backend.engine}'s client "
        "library sending the same requests",
        "engine": backend.engine,
        "data": f"Tatoeba EN->FR: {len(fr)} French documents, {len(texts)} English queries",
        "index": args.index,
        "ingest": {
            "seconds": round(ingest_s, 1),
            "indexed": ing.indexed,
            "unchanged": ing.unchanged,
        },
        "k": args.k,
        "model": embedder.name,
        "encode_ms": {
            "single": summary(single),
            "single_1_thread": summary(single_1t),
            "torch_threads": threads,
            "batched_32_per_query": round(batched_ms, 3),
        },
        "search": results,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg": [round(v, 2) for v in os.getloadavg()],
        },
    }
    print(json.dumps(report, indent=2))
    print()
    print("| config | xlidx p50 ms | xlidx p95 ms | direct p50 ms | direct p95 ms | overhead p50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['xlidx_ms']['p50']:.2f} | {r['xlidx_ms']['p95']:.2f} | "
            f"{r['direct_ms']['p50']:.2f} | {r['direct_ms']['p95']:.2f} | "
            f"{r['overhead_pct_p50']:+.1f}% |"
        )
    enc = report["encode_ms"]
    print(
        f"| query encoding (e5-small, CPU) | single p50 {enc['single']['p50']:.2f} | "
        f"p95 {enc['single']['p95']:.2f} | 1 thread p50 {enc['single_1_thread']['p50']:.2f} | "
        f"1 thread p95 {enc['single_1_thread']['p95']:.2f} | "
        f"batched {enc['batched_32_per_query']:.2f}/query |"
    )


if __name__ == "__main__":
    main()
