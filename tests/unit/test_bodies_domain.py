"""The backends' domain operations: the requests they send (golden bodies, the same on both
engines) and the typed hits they return, parsed in one place (``backends/hits.py``).

Each backend runs against a fake transport: its raw ``search``/``msearch``/``count``/``scan``
record what they were asked and answer canned responses, so no cluster is needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from xlidx.backends._client import ClientBackend
from xlidx.backends.elasticsearch import ElasticsearchBackend
from xlidx.backends.hits import RawHit, buckets_of, hits_of, raw_hit
from xlidx.backends.opensearch import OpenSearchBackend
from xlidx.config import ConnectionSettings
from xlidx.pipeline.calibration import Calibration, Component, LanguageMeans
from xlidx.query.plan import Query

S = ConnectionSettings(urls=("http://h:9200",))
HIT = {
    "_index": "docs-v1",
    "_id": "d1",
    "_score": 1.5,
    "_source": {"body": "le chat", "xlidx": {"lang": "fr"}},
    "highlight": {"body": ["le <em>chat</em>"]},
}
CAL = Calibration(
    model="m",
    mode="auto",
    centering=True,
    reason="test",
    made_at="2026-01-01T00:00:00+00:00",
    languages={
        "en": LanguageMeans("m-en", "q-en", 60, 60),
        "de": LanguageMeans("m-de", "q-de", 55, 55),
    },
    fallback=("m-fb", "q-fb"),
    means={},
    component=Component(0.1, 0.09, 0.98, 2, 115),
)


def fake(cls: type[ClientBackend]) -> Any:
    """``cls`` whose raw operations record each request and answer from ``answers``."""

    class Fake(cls):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            super().__init__(S)
            self.asked: list[tuple[str, Any]] = []
            self.answers: dict[str, Any] = {}

        def search(self, index: str, body: Mapping[str, Any], action: str) -> dict[str, Any]:
            self.asked.append(("search", dict(body)))
            answer: dict[str, Any] = self.answers.get("search", {"hits": {"hits": [HIT]}})
            return answer

        def msearch(
            self, index: str, bodies: Sequence[Mapping[str, Any]], action: str
        ) -> list[dict[str, Any]]:
            self.asked.append(("msearch", [dict(b) for b in bodies]))
            return [{"hits": {"hits": [HIT]}}, {"hits": {"hits": []}}]

        def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
            self.asked.append(("count", query))
            n: int = self.answers.get("count", 3)
            return n

        def scan(
            self,
            index: str,
            query: Mapping[str, Any] | None = None,
            *,
            size: int = 500,
            source: Sequence[str] | None = None,
            versions: bool = False,
        ) -> Iterator[dict[str, Any]]:
            self.asked.append(("scan", {"query": query, "source": source, "versions": versions}))
            yield {**HIT, "_score": None, "_seq_no": 7, "_primary_term": 2}

        def mget(
            self,
            index: str,
            ids: Sequence[str],
            *,
            includes: Sequence[str] | None = None,
            excludes: Sequence[str] | None = None,
        ) -> dict[str, dict[str, Any]]:
            self.asked.append(("mget", {"ids": list(ids), "in": includes, "ex": excludes}))
            return {"d1": {"body": "x"}}

    return Fake()


ENGINES = [OpenSearchBackend, ElasticsearchBackend]


def test_raw_hits_are_parsed_in_one_place() -> None:
    h = raw_hit(HIT)
    assert h == RawHit(
        index="docs-v1",
        id="d1",
        score=1.5,
        source={"body": "le chat", "xlidx": {"lang": "fr"}},
        highlight={"body": ["le <em>chat</em>"]},
    )
    assert h.xlidx == {"lang": "fr"}
    scanned = raw_hit({"_index": "i", "_id": 3, "_score": None, "_seq_no": 4, "_primary_term": 1})
    assert (scanned.id, scanned.score, scanned.source, scanned.seq_no) == ("3", 0.0, {}, 4)
    assert RawHit("i", "x", source={"xlidx": "odd"}).xlidx == {}
    assert hits_of({"hits": {"hits": [HIT, HIT]}}) == [h, h]
    agg = {"aggregations": {"langs": {"buckets": [{"key": "en", "doc_count": 4}]}}}
    assert buckets_of(agg, "langs") == {"en": 4} and buckets_of({}, "langs") == {}


@pytest.mark.parametrize("cls", ENGINES)
def test_language_counts(cls: type[ClientBackend]) -> None:
    b = fake(cls)
    b.answers["search"] = {
        "aggregations": {
            "langs": {"buckets": [{"key": "en", "doc_count": 5}, {"key": "und", "doc_count": 1}]}
        }
    }
    assert b.language_counts("docs-v1") == {"en": 5, "und": 1}
    assert b.language_counts("docs-v1", any_text=True) == {"en": 5, "und": 1}
    assert b.asked == [
        ("search", {"size": 0, "aggs": {"langs": {"terms": {"field": field, "size": 500}}}})
        for field in ("xlidx.lang", "xlidx.langs")
    ]
    assert b.count_text_languages("docs-v1", {"fr", "en"}) == 3
    assert b.asked[-1] == ("count", {"terms": {"xlidx.langs": ["en", "fr"]}})


@pytest.mark.parametrize("cls", ENGINES)
def test_sample_language(cls: type[ClientBackend]) -> None:
    b = fake(cls)
    assert b.sample_language("docs-v1", "fr", 40, fields=["body"], seed=9) == [raw_hit(HIT)]
    assert b.asked == [
        (
            "search",
            {
                "size": 40,
                "_source": [
                    "xlidx.passages",
                    "xlidx.field_langs",
                    "xlidx.translated_to",
                    "body",
                    "i18n.body.fr",
                ],
                "query": {
                    "function_score": {
                        "query": {"term": {"xlidx.lang": "fr"}},
                        "random_score": {"seed": 9, "field": "xlidx.id"},
                        "boost_mode": "replace",
                    }
                },
            },
        )
    ]


@pytest.mark.parametrize("cls", ENGINES)
def test_stale_documents_and_means_carried(cls: type[ClientBackend]) -> None:
    b = fake(cls)
    stale = {
        "nested": {
            "path": "xlidx.passages",
            "query": {
                "bool": {
                    "should": [
                        {"bool": {"filter": [{"term": {"xlidx.passages.lang": "de"}}],
                                  "must_not": [{"term": {"xlidx.passages.center": "m-de"}}]}},
                        {"bool": {"filter": [{"term": {"xlidx.passages.lang": "en"}}],
                                  "must_not": [{"term": {"xlidx.passages.center": "m-en"}}]}},
                        {"bool": {"must_not": [{"terms": {"xlidx.passages.lang": ["de", "en"]}},
                                               {"term": {"xlidx.passages.center": "m-fb"}}]}},
                    ],
                    "minimum_should_match": 1,
                }
            },
        }
    }  # fmt: skip
    assert b.count_stale("docs-v1", CAL) == 3
    [hit] = list(b.stale_documents("docs-v1", CAL, size=50))
    assert (hit.seq_no, hit.primary_term) == (7, 2)
    assert b.asked == [
        ("count", stale),
        ("scan", {"query": stale, "source": ["xlidx.passages"], "versions": True}),
    ]
    b.asked.clear()
    b.count_stale("docs-v1", None)
    assert b.asked == [
        ("count", {"nested": {"path": "xlidx.passages",
                              "query": {"exists": {"field": "xlidx.passages.center"}}}}),
    ]  # fmt: skip
    b.asked.clear()
    b.answers["count"] = 0
    assert b.means_carried("docs-v1", ["b", "a"]) == set()
    assert b.asked == [
        ("count", {"nested": {"path": "xlidx.passages",
                              "query": {"term": {"xlidx.passages.center": m}}}})
        for m in ("a", "b")
    ]  # fmt: skip


@pytest.mark.parametrize("cls", ENGINES)
def test_bulk_actions(cls: type[ClientBackend]) -> None:
    b = fake(cls)
    assert b.index_action("docs-v2", "d1", {"body": "x"}) == {
        "_op_type": "index",
        "_index": "docs-v2",
        "_id": "d1",
        "_source": {"body": "x"},
    }
    hit = RawHit("docs-v1", "d1", seq_no=7, primary_term=2)
    assert b.passages_update(hit, [{"vector": [1.0], "center": "m-en"}]) == {
        "_op_type": "update",
        "_index": "docs-v1",
        "_id": "d1",
        "if_seq_no": 7,
        "if_primary_term": 2,
        "doc": {"xlidx": {"passages": [{"vector": [1.0], "center": "m-en"}]}},
    }
    with pytest.raises(ValueError, match="without its version"):
        b.passages_update(RawHit("docs-v1", "d1"), [])


@pytest.mark.parametrize("cls", ENGINES)
def test_searches_return_typed_hits(cls: type[ClientBackend]) -> None:
    b = fake(cls)
    plan = Query("chat").mode("bm25").query_lang("fr").plan()
    assert b.search_bm25("docs-v1", plan) == [raw_hit(HIT)]
    assert b.asked[-1] == ("search", b.bm25_body(plan))
    knn = Query("chat").mode("knn").vector([0.1, 0.2]).k(3).plan()
    assert b.search_knn("docs-v1", knn, size=3, offset=0) == [raw_hit(HIT)]
    assert b.asked[-1] == ("search", b.knn_body(knn, size=3, offset=0))
    hybrid = Query("chat").vector([0.1, 0.2]).query_lang("fr").plan()
    bm25, nearest = b.search_candidates("docs-v1", hybrid, 30)
    assert bm25 == [raw_hit(HIT)] and nearest == []
    assert b.asked[-1] == (
        "msearch",
        [
            b.bm25_body(hybrid, size=30, offset=0, lean=True),
            b.knn_body(hybrid, size=30, offset=0, lean=True),
        ],
    )
    assert b.hit_sources("docs-v1", hybrid, ["d1"]) == {"d1": {"body": "x"}}
    assert b.asked[-1] == ("mget", {"ids": ["d1"], "in": None, "ex": ["xlidx.passages"]})
