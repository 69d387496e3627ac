"""Ingest throughput: each stage alone, the whole pipeline, and two baselines.

Models of realistic size, built offline and cached under ``$XLIDX_HOME/bench`` by the other
benchmarks' builders: a Marian-base-size argos package (de→en, int8, "echo-length": it decodes
as many tokens as the source has, so each sentence costs what a real translation costs) and a
random encoder of multilingual-e5-small's shape. The corpus is synthetic: ``--docs`` documents
of 1-4 sentences, declared German, translated to English.

Measured in one run, against the dev node (``--url``, default: the dev node on 9200, started
if needed):

* ``translate``: ``Translator.translate`` over every document (batched);
* ``embed``: passage splitting + ``encode_document`` over every document;
* ``write``: xlidx's ``BulkWriter`` on the prepared documents, vs the client library's
  ``parallel_bulk`` (opensearch-py or elasticsearch-py, by the engine at ``--url``) on the
  identical actions (the baseline);
* ``pipeline``: ``xlidx.workflows.ingest`` end to end (stages overlap in threads);
* ``reingest``: the same input again (every document unchanged).

Targets: pipeline >= 0.8 x the slowest stage alone; writer >= 0.95 x parallel_bulk;
re-ingest >= 10 x faster than the first ingest.

    .venv/bin/python benchmarks/bench_ingest.py [--docs 5000] [--url http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


@dataclass
class IngestSetup:
    """What both ingest benchmarks start from: the node, the models, the corpus."""

    url: str
    settings: Any
    backend: Any
    packages_dir: Path
    model_dir: Path
    texts: list[str]
    rows: list[dict[str, Any]]


def ingest_setup(url: str | None, docs: int) -> IngestSetup:
    """The dev node (started when ``url`` is None), the cached Marian-base-size de→en package
    installed in its own directory, the random e5-shaped encoder, and ``docs`` German rows."""
    from bench_embed import random_encoder_dir
    from bench_translate import bench_home, ensure_package, make_docs

    from xlidx.backends import open_backend
    from xlidx.config import ConnectionSettings
    from xlidx.translation_packages import install_from_file, list_installed

    if url is None:
        from xlidx.devnode.node import start
        from xlidx.devnode.paths import DevPaths

        url = start(DevPaths.from_env(9200)).url
    settings = ConnectionSettings(urls=(url,), timeout=120.0)
    home = bench_home()
    package, _ = ensure_package(home)
    packages_dir = home / "packages-ingest"
    if not list_installed(packages_dir):
        install_from_file(package, packages_dir)
    texts = make_docs(docs)
    rows = [{"id": f"d{i}", "lang": "de", "body": t} for i, t in enumerate(texts)]
    return IngestSetup(
        url, settings, open_backend(settings), packages_dir, random_encoder_dir(), texts, rows
    )


def baseline_parallel_bulk(backend: Any, actions: list[dict[str, Any]]) -> int:
    """The client library's own ``parallel_bulk`` (the writer's baseline): documents written."""
    if backend.engine == "elasticsearch":
        from elasticsearch import helpers as es_helpers

        results = es_helpers.parallel_bulk(backend.client, actions, chunk_size=500)
    else:
        from opensearchpy import helpers as os_helpers

        results = os_helpers.parallel_bulk(backend.client, actions, chunk_size=500)
    return sum(1 for success, _ in results if success)


def _rate(n: int, seconds: float) -> dict[str, float]:
    return {"docs": n, "seconds": round(seconds, 2), "docs_per_s": round(n / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from xlidx.documents import Prepared, RawItem, Record, to_record
    from xlidx.indices.manage import ensure
    from xlidx.indices.writer import BulkWriter
    from xlidx.pipeline.embed import load_embedder
    from xlidx.pipeline.fingerprint import model_source
    from xlidx.pipeline.translate import Translator
    from xlidx.pipeline.write import build_document
    from xlidx.spec import IndexSpec
    from xlidx.workflows.ingest import IngestOptions, ingest

    setup = ingest_setup(args.url, args.docs)
    url, backend = setup.url, setup.backend
    packages_dir, texts, rows = setup.packages_dir, setup.texts, setup.rows
    embedder = load_embedder(str(setup.model_dir))
    records = [to_record(RawItem(f"bench:{i}", payload=r)) for i, r in enumerate(rows)]
    assert all(isinstance(r, Record) for r in records)

    # warm-up: load both models before timing anything (the Translator has no cache, so
    # reusing it only reuses the loaded model)
    translator = Translator(packages_dir)
    translator.translate(texts[:4], "de", "en")
    embedder.encode_document(texts[:4])

    results: dict[str, Any] = {"docs": args.docs, "url": url}

    t0 = time.perf_counter()
    translated = translator.translate(texts, "de", "en")
    results["translate"] = _rate(args.docs, time.perf_counter() - t0)

    t0 = time.perf_counter()
    passages = [embedder.split_passages(t) or [t] for t in texts]
    flat = [p for ps in passages for p in ps]
    vectors = embedder.encode_document(flat)
    results["embed"] = _rate(args.docs, time.perf_counter() - t0)
    results["embed"]["passages"] = len(flat)

    prepared: list[Prepared] = []
    it = iter(vectors)
    for rec, ps, tr in zip(records, passages, translated, strict=True):
        assert isinstance(rec, Record)
        p = Prepared(rec, field_langs={"body": "de"}, translations={"body": {"en": tr}})
        p.vectors = [[float(x) for x in next(it)] for _ in ps]
        prepared.append(p)

    embedding = {**embedder.describe(), "source": model_source(embedder)}
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

    writer_index, bulk_index = fresh("writer"), fresh("bulk")
    t0 = time.perf_counter()
    res = BulkWriter(backend).write(writer_index, prepared, model=embedder.name)
    results["write"] = _rate(res.indexed, time.perf_counter() - t0)
    actions = [
        {
            "_op_type": "index",
            "_index": bulk_index,
            "_id": p.record.id,
            "_source": build_document(p, model=embedder.name),
        }
        for p in prepared
    ]
    t0 = time.perf_counter()
    ok = baseline_parallel_bulk(backend, actions)
    results["parallel_bulk"] = _rate(ok, time.perf_counter() - t0)

    name = f"bench-pipeline-{tag}"
    options = IngestOptions(
        index=name,
        text_fields=("body",),
        languages=("de", "en"),
        translate_to=("en",),
        batch_size=args.batch_size,
    )
    items = [RawItem(f"bench:{i}", payload=r) for i, r in enumerate(rows)]
    t0 = time.perf_counter()
    first = ingest(
        items,
        backend=backend,
        options=options,
        embedder=embedder,
        translator=translator,
    )
    results["pipeline"] = _rate(first.indexed, time.perf_counter() - t0)
    t0 = time.perf_counter()
    again = ingest(
        items,
        backend=backend,
        options=options,
        embedder=embedder,
        translator=translator,
    )
    results["reingest"] = _rate(again.unchanged, time.perf_counter() - t0)

    slowest = min(results[s]["docs_per_s"] for s in ("translate", "embed", "write"))
    results["ratios"] = {
        "pipeline_vs_slowest_stage": round(results["pipeline"]["docs_per_s"] / slowest, 2),
        "writer_vs_parallel_bulk": round(
            results["write"]["docs_per_s"] / results["parallel_bulk"]["docs_per_s"], 2
        ),
        "reingest_speedup": round(
            results["reingest"]["docs_per_s"] / results["pipeline"]["docs_per_s"], 1
        ),
    }
    backend.delete_indices([writer_index, bulk_index, f"{name}-v1"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
