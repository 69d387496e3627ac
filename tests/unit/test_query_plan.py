"""The query builder, what renderers do with user text, and client-side fusion.

The golden request bodies of each backend are in test_bodies_opensearch.py and
test_bodies_elasticsearch.py.
"""

from __future__ import annotations

import pytest

from xlidx.backends.elasticsearch import query as es_query
from xlidx.backends.opensearch import query as os_query
from xlidx.errors import ConfigError
from xlidx.query.fusion import fuse_minmax, fuse_rrf, minmax_normalize, per_group_minmax
from xlidx.query.hybrid import default_weights, fuse
from xlidx.query.options import QueryOptions, parse_filter
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
    """Hostile text only ever lands as the 'query' string of match-family queries, whatever
    the backend and whichever request carries it."""
    plan = Query(hostile).vector([1.0]).query_lang("en").plan()
    bodies = (
        os_query.bm25_body(plan),
        os_query.hybrid_body(plan),
        es_query.bm25_body(plan),
        es_query.retriever_body(plan, (0.25, 0.75)),
        es_query.retriever_body(Query(hostile).vector([1.0]).fusion("rrf").plan(), (1.0, 1.0)),
    )
    for body in bodies:
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
    q = QueryOptions(
        "x", mode="bm25", k=3, langs=["fr"], filters=["year<2010", "t=a|b"], fusion="rrf",
        weights="1,2", candidates=10, highlight=False,
    ).to_query().plan()  # fmt: skip
    assert q.filters == (RangeFilter("year", lt=2010), TermFilter("t", ("a", "b")))
    assert q.weights == (1.0, 2.0) and q.langs == ("fr",)
    assert QueryOptions("x", weights=[1.0, 2.0]).to_query().plan().weights == (1.0, 2.0)
    with pytest.raises(ConfigError, match="invalid --weights"):
        QueryOptions("x", mode="bm25", fusion="rrf", weights="a,b").to_query()
