"""Writer throughput on either engine: xlidx's ``BulkWriter`` against the client library's own
``parallel_bulk`` (opensearch-py or elasticsearch-py, by the engine at ``--url``), on identical
actions, in the same run.

Documents: ``--docs`` synthetic records of 1-4 sentences with a translation and one random
384-d vector per passage (the shape multilingual-e5-small gives), built once; no model runs.
Each round writes them into two fresh indices of the same xlidx mapping, alternating which
side goes first, after one untimed round of each (JIT, connections, caches); the ratio is the
median over ``--rounds``. Target: writer >= 0.95 x
parallel_bulk.

    .venv/bin/python benchmarks/bench_write.py --url http://127.0.0.1:9201 [--docs 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

DIM = 384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("XLIDX_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from bench_ingest import baseline_parallel_bulk
    from bench_translate import make_docs

    from xlidx.backends import open_backend
    from xlidx.config import ConnectionSettings
    from xlidx.documents import Prepared, RawItem, Record, to_record
    from xlidx.indices.manage import ensure
    from xlidx.indices.writer import BulkWriter
    from xlidx.pipeline.write import build_document
    from xlidx.spec import IndexSpec

    backend = open_backend(ConnectionSettings(urls=(args.url,), timeout=120.0))
    rng = random.Random(7)  # noqa: S311 - benchmark data, not crypto
    texts = make_docs(args.docs)
    prepared: list[Prepared] = []
    for i, text in enumerate(texts):
        rec = to_record(RawItem(f"bench:{i}", payload={"id": f"d{i}", "lang": "de", "body": text}))
        assert isinstance(rec, Record)
        p = Prepared(rec, field_langs={"body": "de"}, translations={"body": {"en": text[::-1]}})
        p.vectors = [
            [rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(1 + text.count(". ") % 3)
        ]
        prepared.append(p)
    embedding = {"model": "bench-random", "dimension": DIM, "similarity": "cosine"}
    tag = uuid.uuid4().hex[:6]

    def fresh(name: str) -> str:
        spec = IndexSpec(
            name=f"bench-{name}-{tag}",
            embedding=embedding,
            text_fields=("body",),
            languages=("de", "en"),
            translate_to=("en",),
        )
        state, _ = ensure(backend, spec)
        return state.index

    def ours(index: str) -> int:
        return BulkWriter(backend).write(index, prepared, model="bench-random").indexed

    def theirs(index: str) -> int:
        actions = [
            {
                "_op_type": "index",
                "_index": index,
                "_id": p.record.id,
                "_source": build_document(p, model="bench-random"),
            }
            for p in prepared
        ]
        return baseline_parallel_bulk(backend, actions)

    rates: dict[str, list[float]] = {"writer": [], "parallel_bulk": []}
    made: list[str] = []
    try:
        for name, fn in (("writer", ours), ("parallel_bulk", theirs)):  # warm up, untimed
            made.append(fresh(f"warmup-{name.replace('_', '')}"))
            fn(made[-1])
        for r in range(args.rounds):
            order = [("writer", ours), ("parallel_bulk", theirs)]
            for name, fn in order if r % 2 == 0 else order[::-1]:
                index = fresh(f"{name.replace('_', '')}-{r}")
                made.append(index)
                t0 = time.perf_counter()
                n = fn(index)
                seconds = time.perf_counter() - t0
                assert n == args.docs, f"{name} wrote {n} of {args.docs}"
                rates[name].append(n / seconds)
    finally:
        backend.delete_indices(made)
    ratios = [a / b for a, b in zip(rates["writer"], rates["parallel_bulk"], strict=True)]
    report = {
        "benchmark": f"BulkWriter vs {backend.engine}'s parallel_bulk, identical actions",
        "engine": backend.engine,
        "version": backend.capabilities().version,
        "docs": args.docs,
        "rounds": args.rounds,
        "writer_docs_per_s": [round(x, 1) for x in rates["writer"]],
        "parallel_bulk_docs_per_s": [round(x, 1) for x in rates["parallel_bulk"]],
        "ratio_median": round(statistics.median(ratios), 2),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
