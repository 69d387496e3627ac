"""Query DSL that OpenSearch and Elasticsearch share (pure): BM25, filters, sources, paging.

* BM25: ``multi_match`` over the original text fields, plus one ``multi_match`` per language
  the query is available in (its own, and its translations) over ``i18n.<field>.<lang>``, so
  each language is matched with its own analyzer.
* Filters: ``term``/``terms``/``range`` clauses, and ``xlidx.lang`` for ``--lang``.
* The domain reads of the lifecycle and calibration: documents per language, a random sample
  of a language, documents whose passages are off a calibration's means, those carrying a mean.
* Bulk actions: a whole document, and a conditional partial update of its passages.
User text only ever goes into ``multi_match`` (no query-string syntax is parsed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from xlidx.plans import QueryPlan, RangeFilter, TermFilter

if TYPE_CHECKING:
    from xlidx.pipeline.calibration import Calibration

PASSAGES = "xlidx.passages"
#: The documents the ingest pipeline of ``xlidx connect`` indexed without enrichment.
PENDING: dict[str, Any] = {"exists": {"field": "xlidx.pending"}}
#: ... and the mapping of its mark: why, and since when.
PENDING_MAPPING: dict[str, Any] = {
    "xlidx": {
        "properties": {
            "pending": {"properties": {"reason": {"type": "text"}, "since": {"type": "date"}}}
        }
    }
}
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


# -- the domain reads of the index lifecycle and calibration (pure) -----------------------------
LANG = "xlidx.lang"  # a document's language
LANGS = "xlidx.langs"  # every language a document has text in (originals, passages, translations)
AGG_SIZE = 500  # languages per count: more than lingua knows


def language_counts_body(field: str) -> dict[str, Any]:
    """Documents per value of the keyword ``field`` (a terms aggregation named ``langs``)."""
    return {"size": 0, "aggs": {"langs": {"terms": {"field": field, "size": AGG_SIZE}}}}


def text_languages_query(langs: Iterable[str]) -> dict[str, Any]:
    """Documents with text in one of ``langs``."""
    return {"terms": {LANGS: sorted(langs)}}


def sample_body(lang: str, size: int, fields: Sequence[str], seed: int) -> dict[str, Any]:
    """Up to ``size`` random documents in ``lang`` (the same on every run for one ``seed``:
    seeded on the document id), with their passages, ``fields``, the language of each field,
    and the field's text in ``lang`` where it is a segment of a mixed field."""
    own = [f"i18n.{f}.{lang}" for f in fields]
    return {
        "size": size,
        "_source": [PASSAGES, "xlidx.field_langs", "xlidx.translated_to", *fields, *own],
        "query": {
            "function_score": {
                "query": {"term": {LANG: lang}},
                "random_score": {"seed": seed, "field": "xlidx.id"},
                "boost_mode": "replace",
            }
        },
    }


def stale_query(cal: Calibration | None) -> dict[str, Any]:
    """Documents with a passage not at ``cal``'s means (any centered one, without ``cal``, or
    when ``cal`` centers nothing)."""
    if cal is None or not cal.centers:
        inner: dict[str, Any] = {"exists": {"field": f"{PASSAGES}.center"}}
    else:
        should: list[dict[str, Any]] = []
        for lang, m in sorted(cal.languages.items()):
            should.append({"bool": {
                "filter": [{"term": {f"{PASSAGES}.lang": lang}}],
                "must_not": [{"term": {f"{PASSAGES}.center": m.document}}],
            }})  # fmt: skip
        if cal.fallback:
            should.append({"bool": {"must_not": [
                {"terms": {f"{PASSAGES}.lang": sorted(cal.languages)}},
                {"term": {f"{PASSAGES}.center": cal.fallback[0]}},
            ]}})  # fmt: skip
        inner = {"bool": {"should": should, "minimum_should_match": 1}}
    return {"nested": {"path": PASSAGES, "query": inner}}


def carrying_query(mean: str) -> dict[str, Any]:
    """Documents with a passage centered with the mean ``mean``."""
    return {"nested": {"path": PASSAGES, "query": {"term": {f"{PASSAGES}.center": mean}}}}


def index_action(index: str, doc_id: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """A bulk action that writes the whole document ``doc_id``."""
    return {"_op_type": "index", "_index": index, "_id": doc_id, "_source": dict(source)}


def passages_update(
    index: str, doc_id: str, seq_no: int, primary_term: int, passages: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A bulk action that replaces the passages of document ``doc_id``, unless the document
    changed since it was read at ``seq_no`` / ``primary_term`` (then it answers 409)."""
    return {
        "_op_type": "update",
        "_index": index,
        "_id": doc_id,
        "if_seq_no": seq_no,
        "if_primary_term": primary_term,
        "doc": {"xlidx": {"passages": [dict(p) for p in passages]}},
    }
