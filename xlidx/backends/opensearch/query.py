"""Render a :class:`~xlidx.plans.QueryPlan` into OpenSearch request bodies (pure).

* BM25, filters, sources and paging: :mod:`xlidx.backends._dsl` (shared with Elasticsearch).
* kNN: a ``nested`` query over ``xlidx.passages`` with ``score_mode: max`` (a document scores
  by its best passage).
* Hybrid (server side): OpenSearch's ``hybrid`` query, fused by an xlidx search pipeline.
"""

from __future__ import annotations

from typing import Any

from xlidx.backends._dsl import PASSAGES, VECTOR_FIELD, bm25_query, common, filtered, search_body
from xlidx.plans import QueryPlan

PIPELINE_PREFIX = "xlidx-hybrid"
PIPELINE_VERSION = 1


def knn_query(plan: QueryPlan) -> dict[str, Any]:
    if plan.vector is None:
        raise ValueError("a kNN query needs the query vector")
    knn: dict[str, Any] = {"vector": list(plan.vector), "k": plan.window}
    if plan.ef_search is not None:
        knn["method_parameters"] = {"ef_search": plan.ef_search}
    return {
        "nested": {
            "path": PASSAGES,
            "score_mode": "max",
            "query": {"knn": {VECTOR_FIELD: knn}},
        }
    }


def bm25_body(
    plan: QueryPlan, *, size: int | None = None, offset: int | None = None, lean: bool = False
) -> dict[str, Any]:
    return search_body(plan, bm25_query(plan), size, offset, lean)


def knn_body(
    plan: QueryPlan, *, size: int | None = None, offset: int | None = None, lean: bool = False
) -> dict[str, Any]:
    return search_body(plan, knn_query(plan), size, offset, lean)


def hybrid_body(plan: QueryPlan, *, lean: bool = False) -> dict[str, Any]:
    """The ``hybrid`` query; fused by the pipeline named by :func:`pipeline_name`.

    Asks for ``plan.window`` hits, like the client-side path, because the server normalizes
    each sub-query over the hits it returns; the caller keeps ``[offset : offset + size]``.
    """
    body = common(plan, plan.window, 0, lean=lean)
    body["query"] = {
        "hybrid": {"queries": [filtered(bm25_query(plan), plan), filtered(knn_query(plan), plan)]}
    }
    return body


def pipeline_name(fusion: str, weights: tuple[float, float], rank_constant: int) -> str:
    if fusion == "rrf":
        return f"{PIPELINE_PREFIX}-v{PIPELINE_VERSION}-rrf-{rank_constant}"
    b, k = (round(w / sum(weights), 2) for w in weights)
    return f"{PIPELINE_PREFIX}-v{PIPELINE_VERSION}-minmax-{b:.2f}-{k:.2f}"


def pipeline_body(fusion: str, weights: tuple[float, float], rank_constant: int) -> dict[str, Any]:
    """A search pipeline that fuses the two sub-queries of a ``hybrid`` query."""
    if fusion == "rrf":
        processor: dict[str, Any] = {
            "score-ranker-processor": {
                "combination": {"technique": "rrf", "rank_constant": rank_constant}
            }
        }
    else:
        b, k = (round(w / sum(weights), 2) for w in weights)
        processor = {
            "normalization-processor": {
                "normalization": {"technique": "min_max"},
                "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [b, k]}},
            }
        }
    return {
        "description": f"xlidx hybrid fusion ({fusion}), pipeline version {PIPELINE_VERSION}",
        "phase_results_processors": [processor],
    }
