"""Render a :class:`~xlidx.query.plan.QueryPlan` into OpenSearch request bodies (pure).

* BM25: ``multi_match`` over the original text fields, plus one ``multi_match`` per language
  the query is available in (its own, and its translations) over ``i18n.<field>.<lang>``, so
  each language is matched with its own analyzer.
* kNN: a ``nested`` query over ``xlidx.passages`` with ``score_mode: max`` (a document scores
  by its best passage).
* Hybrid (server side): OpenSearch's ``hybrid`` query, fused by an xlidx search pipeline.
User text only ever goes into ``multi_match`` (no query-string syntax is parsed).
"""

from __future__ import annotations

from typing import Any

from xlidx.query.plan import QueryPlan, RangeFilter, TermFilter

PASSAGES = "xlidx.passages"
PIPELINE_PREFIX = "xlidx-hybrid"
PIPELINE_VERSION = 1


def bm25_query(plan: QueryPlan) -> dict[str, Any]:
    fields = list(plan.text_fields)
    should: list[dict[str, Any]] = [
        {"multi_match": {"query": plan.text, "fields": fields, "type": "best_fields"}}
    ]
    by_lang = dict(plan.translations)
    if plan.query_lang and plan.query_lang != "und":
        by_lang.setdefault(plan.query_lang, plan.text)
    for lang, text in sorted(by_lang.items()):
        should.append(
            {
                "multi_match": {
                    "query": text,
                    "fields": [f"i18n.{f}.{lang}" for f in fields],
                    "type": "best_fields",
                }
            }
        )
    return {"bool": {"should": should, "minimum_should_match": 1}}


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
            "query": {"knn": {f"{PASSAGES}.vector": knn}},
        }
    }


def filter_clauses(plan: QueryPlan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in plan.filters:
        if isinstance(f, TermFilter):
            if len(f.values) == 1:
                out.append({"term": {f.field: f.values[0]}})
            else:
                out.append({"terms": {f.field: list(f.values)}})
        elif isinstance(f, RangeFilter):
            bounds = {
                k: v
                for k, v in (("gte", f.gte), ("lte", f.lte), ("gt", f.gt), ("lt", f.lt))
                if v is not None
            }
            out.append({"range": {f.field: bounds}})
    if plan.langs:
        out.append({"terms": {"xlidx.lang": list(plan.langs)}})
    return out


def _filtered(query: dict[str, Any], plan: QueryPlan) -> dict[str, Any]:
    filters = filter_clauses(plan)
    if not filters:
        return query
    return {"bool": {"must": [query], "filter": filters}}


CANDIDATE_SOURCE = {"includes": ["xlidx.lang"]}


def source_filter(plan: QueryPlan) -> dict[str, Any]:
    """What a hit returns of its ``_source``: never the vectors."""
    src: dict[str, Any] = {"excludes": [PASSAGES]}
    if plan.source_includes is not None:
        src["includes"] = [*plan.source_includes, "xlidx.lang", "xlidx.id"]
    return src


def _common(plan: QueryPlan, size: int, offset: int, *, lean: bool = False) -> dict[str, Any]:
    """``lean``: candidates for fusion return only their language (sources are fetched for
    the final page alone), unless highlighting needs the search to return them."""
    body: dict[str, Any] = {
        "size": size,
        "from": offset,
        "_source": dict(CANDIDATE_SOURCE) if lean and not plan.highlight else source_filter(plan),
        "track_total_hits": False,
    }
    if plan.highlight:
        body["highlight"] = {
            "fields": {
                f: {} for f in (*plan.text_fields, *(f"i18n.{f}.*" for f in plan.text_fields))
            },
            "fragment_size": 160,
            "number_of_fragments": 1,
        }
    return body


def _search_body(
    plan: QueryPlan, query: dict[str, Any], size: int | None, offset: int | None, lean: bool
) -> dict[str, Any]:
    body = _common(
        plan,
        plan.size if size is None else size,
        plan.offset if offset is None else offset,
        lean=lean,
    )
    body["query"] = _filtered(query, plan)
    return body


def bm25_body(
    plan: QueryPlan, *, size: int | None = None, offset: int | None = None, lean: bool = False
) -> dict[str, Any]:
    return _search_body(plan, bm25_query(plan), size, offset, lean)


def knn_body(
    plan: QueryPlan, *, size: int | None = None, offset: int | None = None, lean: bool = False
) -> dict[str, Any]:
    return _search_body(plan, knn_query(plan), size, offset, lean)


def hybrid_body(plan: QueryPlan, *, lean: bool = False) -> dict[str, Any]:
    """The ``hybrid`` query; fused by the pipeline named by :func:`pipeline_name`.

    Asks for ``plan.window`` hits, like the client-side path, because the server normalizes
    each sub-query over the hits it returns; the caller keeps ``[offset : offset + size]``.
    """
    body = _common(plan, plan.window, 0, lean=lean)
    body["query"] = {
        "hybrid": {"queries": [_filtered(bm25_query(plan), plan), _filtered(knn_query(plan), plan)]}
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
