"""Query DSL that OpenSearch and Elasticsearch share (pure): BM25, filters, sources, paging.

* BM25: ``multi_match`` over the original text fields, plus one ``multi_match`` per language
  the query is available in (its own, and its translations) over ``i18n.<field>.<lang>``, so
  each language is matched with its own analyzer.
* Filters: ``term``/``terms``/``range`` clauses, and ``xlidx.lang`` for ``--lang``.
User text only ever goes into ``multi_match`` (no query-string syntax is parsed).
"""

from __future__ import annotations

from typing import Any

from xlidx.plans import QueryPlan, RangeFilter, TermFilter

PASSAGES = "xlidx.passages"
VECTOR_FIELD = f"{PASSAGES}.vector"


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


def filtered(query: dict[str, Any], plan: QueryPlan) -> dict[str, Any]:
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


def common(plan: QueryPlan, size: int, offset: int, *, lean: bool = False) -> dict[str, Any]:
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


def search_body(
    plan: QueryPlan, query: dict[str, Any], size: int | None, offset: int | None, lean: bool
) -> dict[str, Any]:
    body = common(
        plan,
        plan.size if size is None else size,
        plan.offset if offset is None else offset,
        lean=lean,
    )
    body["query"] = filtered(query, plan)
    return body
