"""The query builder, the rendered request bodies (golden) and client-side fusion."""

from __future__ import annotations

import pytest

from xlidx.backends.opensearch_query import (
    bm25_body,
    hybrid_body,
    knn_body,
    pipeline_body,
    pipeline_name,
)
from xlidx.cli.query import build_query, parse_filter
from xlidx.errors import ConfigError
from xlidx.query.engine import default_weights, fuse
from xlidx.query.fusion import fuse_minmax, fuse_rrf, minmax_normalize, per_group_minmax
from xlidx.query.plan import Query, RangeFilter, TermFilter


def test_builder_is_immutable() -> None:
    base = Query("le chat")
    q2 = base.mode("bm25").k(5).filter("topic", "food")
    assert base.plan().mode == "hybrid" and base.plan().size == 10 and base.plan().filters == ()
    assert q2.plan().mode == "bm25" and q2.plan().size == 5
    assert q2.plan().filters == (TermFilter("topic", ("food",)),)
    q3 = q2.range("year", gte=2000, lt=2010)
    assert q2.plan().filters != q3.plan().filters
    assert q3.plan().filters[-1] == RangeFilter("year", gte=2000, lt=2010)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Query("   "), "empty"),
        (lambda: Query("x" * 5000), "longer than"),
        (lambda: Query("x").mode("fuzzy"), "unknown mode"),
        (lambda: Query("x").k(0), "between 1 and 1000"),
        (lambda: Query("x").fusion("borda"), "unknown fusion"),
        (lambda: Query("x").fusion("rrf", [1.0]), "two non-negative"),
        (lambda: Query("x").fusion("rrf", [0.0, 0.0]), "at least one weight"),
        (lambda: Query("x").fusion("minmax", [float("nan"), 1.0]), "two non-negative"),
        (lambda: Query("x").filter("a b", 1), "invalid filter field"),
        (lambda: Query("x").filter("_id", 1), "invalid filter field"),
        (lambda: Query("x").range("year", between=1), "takes gte"),
        (lambda: Query("x").langs("english"), "invalid language code"),
    ],
)
def test_builder_rejects_bad_input(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def _plan() -> Query:
    return (
        Query("le chat")
        .text_fields("title", "body")
        .query_lang("fr")
        .translations({"en": "the cat"})
        .vector([0.5, 0.5])
        .candidates(50)
        .k(5)
        .filter("topic", "pets", "animals")
        .range("year", gte=2000)
        .langs("fr", "en")
    )


def test_bm25_body_golden() -> None:
    body = bm25_body(_plan().plan())
    assert body == {
        "size": 5,
        "from": 0,
        "_source": {"excludes": ["xlidx.passages"]},
        "track_total_hits": False,
        "query": {
            "bool": {
                "must": [
                    {
                        "bool": {
                            "should": [
                                {
                                    "multi_match": {
                                        "query": "le chat",
                                        "fields": ["title", "body"],
                                        "type": "best_fields",
                                    }
                                },
                                {
                                    "multi_match": {
                                        "query": "the cat",
                                        "fields": ["i18n.title.en", "i18n.body.en"],
                                        "type": "best_fields",
                                    }
                                },
                                {
                                    "multi_match": {
                                        "query": "le chat",
                                        "fields": ["i18n.title.fr", "i18n.body.fr"],
                                        "type": "best_fields",
                                    }
                                },
                            ],
                            "minimum_should_match": 1,
                        }
                    }
                ],
                "filter": [
                    {"terms": {"topic": ["pets", "animals"]}},
                    {"range": {"year": {"gte": 2000}}},
                    {"terms": {"xlidx.lang": ["fr", "en"]}},
                ],
            }
        },
    }


def test_knn_and_hybrid_bodies_golden() -> None:
    plan = Query("x").vector([1.0, 0.0]).candidates(20, ef_search=64).k(3).offset(2).plan()
    knn = {
        "nested": {
            "path": "xlidx.passages",
            "score_mode": "max",
            "query": {
                "knn": {
                    "xlidx.passages.vector": {
                        "vector": [1.0, 0.0],
                        "k": 20,
                        "method_parameters": {"ef_search": 64},
                    }
                }
            },
        }
    }
    assert knn_body(plan)["query"] == knn
    assert knn_body(plan)["from"] == 2
    hybrid = hybrid_body(plan)
    assert hybrid["size"] == 20 and hybrid["from"] == 0  # the window; sliced by the caller
    assert hybrid["query"]["hybrid"]["queries"][1] == knn
    assert (
        hybrid["query"]["hybrid"]["queries"][0]["bool"]["should"][0]["multi_match"]["query"] == "x"
    )


def test_highlight_and_source() -> None:
    body = bm25_body(Query("x").text_fields("title").highlight().source("title", "year").plan())
    assert body["highlight"]["fields"] == {"title": {}, "i18n.title.*": {}}
    assert body["_source"] == {
        "excludes": ["xlidx.passages"],
        "includes": ["title", "year", "xlidx.lang", "xlidx.id"],
    }


@pytest.mark.parametrize(
    "hostile",
    [
        'title:"x" OR *:*',
        "body:/.*/ AND _exists_:secret",
        '{"script": {"source": "System.exit(0)"}}',
        "\\\\ ** ~ ^2 [a TO z] && || !",
        "<script>alert(1)</script>",
    ],
)
def test_user_text_never_becomes_query_syntax(hostile: str) -> None:
    """Hostile text only ever lands as the 'query' string of match-family queries."""
    plan = Query(hostile).vector([1.0]).query_lang("en").plan()
    for body in (bm25_body(plan), hybrid_body(plan)):
        text = repr(body)
        assert "query_string" not in text and "simple_query_string" not in text
        assert "script" not in {k for k in _keys(body)}
        found = [m["multi_match"]["query"] for m in _multi_matches(body)]
        assert found and all(q == hostile for q in found)


def _keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def _multi_matches(node: object) -> list[dict[str, dict[str, str]]]:
    if isinstance(node, dict):
        own = [node] if "multi_match" in node else []
        return own + [m for v in node.values() for m in _multi_matches(v)]
    if isinstance(node, list):
        return [m for v in node for m in _multi_matches(v)]
    return []


def test_pipelines() -> None:
    assert pipeline_name("minmax", (0.11, 0.5), 60) == "xlidx-hybrid-v1-minmax-0.18-0.82"
    assert pipeline_name("rrf", (1, 1), 60) == "xlidx-hybrid-v1-rrf-60"
    assert pipeline_body("minmax", (1.0, 3.0), 60)["phase_results_processors"] == [
        {
            "normalization-processor": {
                "normalization": {"technique": "min_max"},
                "combination": {
                    "technique": "arithmetic_mean",
                    "parameters": {"weights": [0.25, 0.75]},
                },
            }
        }
    ]


def test_minmax_mirrors_the_server() -> None:
    # numbers measured on the dev node's neural-search (see fusion.py)
    bm25 = [("d", 1.2394514), ("c", 1.0341108), ("b", 0.636667), ("a", 0.4889865)]
    knn = [("a", 1.0), ("b", 0.9)]
    fused = fuse_minmax([bm25, knn], [0.3, 0.7])
    assert [(f.id, round(f.score, 4)) for f in fused] == [
        ("a", 0.7003),
        ("d", 0.3),
        ("c", 0.2179),
        ("b", 0.0597),
    ]
    assert fused[0].ranks == (4, 1) and fused[1].ranks == (1, None)
    assert minmax_normalize([("x", 2.0)]) == {"x": 1.0}


def test_rrf_mirrors_the_server() -> None:
    bm25 = [("b", 3.0), ("d", 2.0), ("a", 1.0)]
    knn = [("a", 1.0), ("b", 0.9), ("d", 0.8)]
    fused = fuse_rrf([bm25, knn], [1, 1], rank_constant=60)
    assert [(f.id, round(f.score, 6)) for f in fused] == [
        ("b", 0.032522),
        ("a", 0.032266),
        ("d", 0.032002),
    ]
    heavier_knn = fuse_rrf([bm25, knn], [0.2, 0.8])
    assert heavier_knn[0].id == "a"


def test_balance_normalizes_bm25_per_language() -> None:
    bm25 = [("en1", 9.0), ("en2", 8.5), ("fr1", 3.0), ("fr2", 2.0)]
    knn = [("fr1", 0.8), ("en1", 0.8), ("en2", 0.7), ("fr2", 0.6)]
    langs = {"en1": "en", "en2": "en", "fr1": "fr", "fr2": "fr"}
    plain = fuse(Query("x").plan(), bm25, knn, (1.0, 0.0))
    balanced = fuse(Query("x").balance().plan(), bm25, knn, (1.0, 0.0), langs)
    assert [f.id for f in plain][:2] == ["en1", "en2"]
    assert [f.id for f in balanced][:2] == ["en1", "fr1"]  # the best of each language first
    # kNN scores are left alone: with kNN only, balance changes nothing
    assert [f.id for f in fuse(Query("x").balance().plan(), bm25, knn, (0.0, 1.0), langs)] == [
        f.id for f in fuse(Query("x").plan(), bm25, knn, (0.0, 1.0))
    ]
    assert per_group_minmax({})([("a", 1.0)]) == {"a": 1.0}


def test_default_weights_gate_bm25() -> None:
    assert default_weights(0.0) == (0.0, 0.75)
    assert default_weights(0.04) == (0.0, 0.75)
    assert default_weights(1.0) == (0.25, 0.75)
    assert default_weights(0.5) == (0.12, 0.75)


def test_cli_filters() -> None:
    assert parse_filter("topic=food") == ("topic", "=", "food")
    assert parse_filter("year>=2000") == ("year", ">=", "2000")
    with pytest.raises(ConfigError, match="invalid --filter"):
        parse_filter("topic")
    q = build_query(
        "x",
        mode="bm25",
        k=3,
        offset=0,
        langs=["fr"],
        query_lang=None,
        filters=["year<2010", "t=a|b"],
        fusion="rrf",
        weights="1,2",
        candidates=10,
        ef_search=None,
        balance=False,
        highlight=False,
    ).plan()
    assert q.filters == (RangeFilter("year", lt=2010), TermFilter("t", ("a", "b")))
    assert q.weights == (1.0, 2.0) and q.langs == ("fr",)
    with pytest.raises(ConfigError, match="invalid --weights"):
        build_query(
            "x",
            mode="bm25",
            k=3,
            offset=0,
            langs=[],
            query_lang=None,
            filters=[],
            fusion="rrf",
            weights="a,b",
            candidates=10,
            ef_search=None,
            balance=False,
            highlight=False,
        )
