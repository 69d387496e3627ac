"""Render a :class:`~xlidx.plans.QueryPlan` into Elasticsearch request bodies (pure).

Bodies are assembled with elasticsearch-dsl's ``Search``:

* BM25, filters, sources and paging: :mod:`xlidx.backends._dsl`, as on OpenSearch.
* kNN: the top-level ``knn`` search over the nested ``xlidx.passages.vector``. Elasticsearch
  scores a document by its nearest passage (the same ``score_mode: max`` as OpenSearch's
  nested query), and applies the filters inside the kNN search (pre-filtering), so a
  restrictive filter still returns ``k`` documents.
* Hybrid (server side): the ``linear`` retriever (min-max normalized, weighted; 8.18+) or the
  ``rrf`` retriever, when the cluster has them (detected by a probe, never assumed).
"""

from __future__ import annotations

from typing import Any

from elasticsearch.dsl import Q, Search

from xlidx.backends._dsl import VECTOR_FIELD, bm25_query, common, filter_clauses, search_body
from xlidx.errors import ConfigError
from xlidx.plans import QueryPlan

MAX_NUM_CANDIDATES = 10_000


def num_candidates(plan: QueryPlan, k: int) -> int:
    """HNSW candidates per shard: ``--ef-search`` when given, else Elasticsearch's own default
    (1.5 k), never below k and never above Elasticsearch's limit."""
    wanted = plan.ef_search if plan.ef_search is not None else -(-3 * k // 2)
    return min(MAX_NUM_CANDIDATES, max(k, wanted))


def knn_section(plan: QueryPlan, k: int | None = None) -> dict[str, Any]:
    """The ``knn`` search (or retriever) clause, with the plan's filters as pre-filters."""
    if plan.vector is None:
        raise ValueError("a kNN query needs the query vector")
    k = plan.window if k is None else k
    if k > MAX_NUM_CANDIDATES:
        raise ConfigError(
            f"Elasticsearch's kNN search returns at most {MAX_NUM_CANDIDATES:,} hits; "
            f"offset + k and --candidates must stay within it (asked for {k:,})"
        )
    filters = filter_clauses(plan)
    s = Search().knn(
        VECTOR_FIELD,
        k,
        num_candidates(plan, k),
        query_vector=list(plan.vector),
        filter=Q({"bool": {"filter": filters}}) if filters else None,
    )
    knn: dict[str, Any] = s.to_dict()["knn"]
    return knn


def bm25_body(
    plan: QueryPlan, *, size: int | None = None, offset: int | None = None, lean: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = Search.from_dict(
        search_body(plan, bm25_query(plan), size, offset, lean)
    ).to_dict()
    return body


def knn_body(
    plan: QueryPlan, *, size: int | None = None, offset: int | None = None, lean: bool = False
) -> dict[str, Any]:
    size = plan.size if size is None else size
    offset = plan.offset if offset is None else offset
    s = Search.from_dict(common(plan, size, offset, lean=lean))
    body: dict[str, Any] = s.to_dict()
    body["knn"] = knn_section(plan, max(plan.window, offset + size))
    return body


def retriever_body(
    plan: QueryPlan, weights: tuple[float, float], *, lean: bool = False
) -> dict[str, Any]:
    """One request fused by the server: ``rrf`` or ``linear`` (min-max) over BM25 and kNN.

    Asks for ``plan.window`` hits, like the client-side path; the caller keeps
    ``[offset : offset + size]``.
    """
    body = common(plan, plan.window, 0, lean=lean)
    bm25 = Search.from_dict({"query": bm25_query(plan)})
    filters = filter_clauses(plan)
    if filters:
        bm25 = bm25.filter(Q({"bool": {"filter": filters}}))
    standard = {"standard": {"query": bm25.to_dict()["query"]}}
    knn = {"knn": knn_section(plan)}
    if plan.fusion == "rrf":
        body["retriever"] = {
            "rrf": {
                "retrievers": [standard, knn],
                "rank_constant": plan.rank_constant,
                "rank_window_size": plan.window,
            }
        }
    else:
        # weights that sum to 1, as in client fusion and OpenSearch's pipeline: the same
        # ranking and the same scores
        b, k = (w / sum(weights) for w in weights)
        body["retriever"] = {
            "linear": {
                "retrievers": [
                    {"retriever": standard, "weight": b, "normalizer": "minmax"},
                    {"retriever": knn, "weight": k, "normalizer": "minmax"},
                ],
                "rank_window_size": plan.window,
            }
        }
    return body
