"""Golden request bodies of the Elasticsearch backend: BM25, kNN, retrievers, mappings.

Each renderer is pure (plan or spec in, plain dict out) and is compared with a literal dict.
Elasticsearch's kNN is the top-level ``knn`` search over the nested passage vectors, with the
plan's filters as pre-filters (``knn.filter``), and server-side fusion is a retriever.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from xlidx.backends.elasticsearch import index_types_for, mapping
from xlidx.backends.elasticsearch.query import (
    bm25_body,
    knn_body,
    knn_section,
    num_candidates,
    retriever_body,
)
from xlidx.backends.opensearch import query as os_query
from xlidx.errors import ConfigError
from xlidx.query.plan import Query
from xlidx.spec import IndexSpec, VectorSpec, load_template

EMB = {"model": "tiny", "dimension": 8, "similarity": "cosine"}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

FILTERS = [
    {"terms": {"topic": ["pets", "animals"]}},
    {"range": {"year": {"gte": 2000}}},
    {"terms": {"xlidx.lang": ["fr", "en"]}},
]
SHOULD = [
    {"multi_match": {"query": "le chat", "fields": ["title", "body"], "type": "best_fields"}},
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
]
KNN = {
    "field": "xlidx.passages.vector",
    "k": 50,
    "num_candidates": 80,
    "query_vector": [0.5, 0.5],
    "filter": {"bool": {"filter": FILTERS}},
}
# what a retriever's BM25 side looks like: the filters in the same bool as the text clauses
STANDARD = {
    "standard": {
        "query": {
            "bool": {
                "should": SHOULD,
                "minimum_should_match": 1,
                "filter": [{"bool": {"filter": FILTERS}}],
            }
        }
    }
}


def _plan() -> Query:
    return (
        Query("le chat")
        .text_fields("title", "body")
        .query_lang("fr")
        .translations({"en": "the cat"})
        .vector([0.5, 0.5])
        .candidates(50, ef_search=80)
        .k(5)
        .filter("topic", "pets", "animals")
        .range("year", gte=2000)
        .langs("fr", "en")
    )


# -- BM25 --------------------------------------------------------------------------------------


def test_bm25_body_golden() -> None:
    plan = _plan().offset(3).highlight().plan()
    body = bm25_body(plan)
    assert body == {
        "size": 5,
        "from": 3,
        "_source": {"excludes": ["xlidx.passages"]},
        "track_total_hits": False,
        "highlight": {
            "fields": {
                "title": {},
                "body": {},
                "i18n.title.*": {},
                "i18n.body.*": {},
            },
            "fragment_size": 160,
            "number_of_fragments": 1,
        },
        "query": {
            "bool": {
                "must": [{"bool": {"should": SHOULD, "minimum_should_match": 1}}],
                "filter": FILTERS,
            }
        },
    }
    assert body == os_query.bm25_body(plan)  # the BM25 DSL is the same on both engines


def test_bm25_body_paged_and_lean() -> None:
    plan = Query("x").text_fields("title").source("title").plan()
    assert bm25_body(plan, size=100, offset=0, lean=True) == {
        "size": 100,
        "from": 0,
        "_source": {"includes": ["xlidx.lang"]},
        "track_total_hits": False,
        "query": {
            "bool": {
                "should": [
                    {"multi_match": {"query": "x", "fields": ["title"], "type": "best_fields"}}
                ],
                "minimum_should_match": 1,
            }
        },
    }
    assert bm25_body(plan)["_source"] == {
        "excludes": ["xlidx.passages"],
        "includes": ["title", "xlidx.lang", "xlidx.id"],
    }


# -- kNN ---------------------------------------------------------------------------------------


def test_knn_body_golden() -> None:
    """Top-level knn; filters are pre-filters inside it, never a query around it."""
    assert knn_body(_plan().offset(3).plan()) == {
        "size": 5,
        "from": 3,
        "_source": {"excludes": ["xlidx.passages"]},
        "track_total_hits": False,
        "knn": KNN,
    }


def test_knn_body_unfiltered_lean_and_k_covers_the_page() -> None:
    plan = Query("x").vector([1.0, 0.0]).candidates(20).k(3).offset(30).plan()
    assert knn_body(plan, lean=True) == {
        "size": 3,
        "from": 30,
        "_source": {"includes": ["xlidx.lang"]},
        "track_total_hits": False,
        # k reaches past the page (offset + size), candidates default to 1.5 k
        "knn": {
            "field": "xlidx.passages.vector",
            "k": 33,
            "num_candidates": 50,
            "query_vector": [1.0, 0.0],
        },
    }
    assert knn_body(plan, size=100, offset=0)["knn"]["k"] == 100


def test_knn_needs_a_vector() -> None:
    with pytest.raises(ValueError, match="needs the query vector"):
        knn_body(Query("x").plan())
    with pytest.raises(ValueError, match="needs the query vector"):
        knn_section(Query("x").plan())


@pytest.mark.parametrize(
    ("k", "ef_search", "expected"),
    [
        (10, None, 15),  # Elasticsearch's own default, 1.5 k
        (7, None, 11),  # rounded up
        (1, None, 2),
        (10, 64, 64),  # --ef-search decides
        (100, 64, 100),  # never below k
        (10, 50_000, 10_000),  # never above Elasticsearch's limit
        (9_000, None, 10_000),
    ],
)
def test_num_candidates(k: int, ef_search: int | None, expected: int) -> None:
    plan = Query("x").candidates(10, ef_search=ef_search).plan()
    assert num_candidates(plan, k) == expected


# -- retrievers (server-side fusion) -----------------------------------------------------------


def test_linear_retriever_golden() -> None:
    """minmax fusion is the ``linear`` retriever, min-max normalized, weighted as given."""
    assert retriever_body(_plan().offset(10).plan(), (0.25, 0.75), lean=True) == {
        "size": 50,
        "from": 0,
        "_source": {"includes": ["xlidx.lang"]},
        "track_total_hits": False,
        "retriever": {
            "linear": {
                "retrievers": [
                    {"retriever": STANDARD, "weight": 0.25, "normalizer": "minmax"},
                    {"retriever": {"knn": KNN}, "weight": 0.75, "normalizer": "minmax"},
                ],
                "rank_window_size": 50,
            }
        },
    }


def test_rrf_retriever_golden() -> None:
    plan = (
        Query("x").text_fields("title").vector([1.0, 0.0]).candidates(20).fusion("rrf").k(3).plan()
    )
    assert retriever_body(plan, (1.0, 1.0)) == {
        "size": 20,
        "from": 0,
        "_source": {"excludes": ["xlidx.passages"]},
        "track_total_hits": False,
        "retriever": {
            "rrf": {
                "retrievers": [
                    {
                        "standard": {
                            "query": {
                                "bool": {
                                    "should": [
                                        {
                                            "multi_match": {
                                                "query": "x",
                                                "fields": ["title"],
                                                "type": "best_fields",
                                            }
                                        }
                                    ],
                                    "minimum_should_match": 1,
                                }
                            }
                        }
                    },
                    {
                        "knn": {
                            "field": "xlidx.passages.vector",
                            "k": 20,
                            "num_candidates": 30,
                            "query_vector": [1.0, 0.0],
                        }
                    },
                ],
                "rank_constant": 60,
                "rank_window_size": 20,
            }
        },
    }


# -- mappings ----------------------------------------------------------------------------------


def _spec(vector: VectorSpec | None = None, dimension: int = 8) -> IndexSpec:
    return IndexSpec(
        name="docs",
        embedding={**EMB, "dimension": dimension},
        text_fields=("title",),
        languages=("en", "fr"),
        translate_to=("ja",),
        vector=vector or VectorSpec(),
    )


def _vector(body: dict[str, Any]) -> Any:
    return body["mappings"]["properties"]["xlidx"]["properties"]["passages"]["properties"]["vector"]


def test_mapping_dense_vector_golden() -> None:
    body = mapping.index_body(_spec(), xlidx_version="9.9.9", now=NOW)
    assert body["settings"] == {"index": {"number_of_shards": 1, "number_of_replicas": 0}}
    assert body["mappings"]["properties"]["xlidx"]["properties"]["passages"] == {
        "type": "nested",
        "properties": {
            "vector": {
                "type": "dense_vector",
                "dims": 8,
                "index": True,
                "similarity": "cosine",
                "index_options": {"type": "hnsw", "m": 16, "ef_construction": 128},
            },
            "lang": {"type": "keyword"},
            "field": {"type": "keyword"},
            "n": {"type": "integer"},
            "center": {"type": "keyword"},
            "norm": {"type": "float", "index": False},
        },
    }
    x = body["mappings"]["_meta"]["xlidx"]
    assert x["backend"] == "elasticsearch"
    assert x["vector"] == {
        "engine": "lucene",
        "method": "hnsw",
        "space_type": "cosinesimil",
        "m": 16,
        "ef_construction": 128,
        "index_type": "hnsw",
    }


@pytest.mark.parametrize(
    ("space_type", "similarity"),
    [("cosinesimil", "cosine"), ("innerproduct", "max_inner_product"), ("l2", "l2_norm")],
)
@pytest.mark.parametrize("index_type", ["hnsw", "int8_hnsw", "bbq_hnsw"])
def test_mapping_similarity_and_index_options(
    space_type: str, similarity: str, index_type: str
) -> None:
    v = VectorSpec(space_type=space_type, index_type=index_type, m=32, ef_construction=256)
    body = mapping.index_body(_spec(v, dimension=64), xlidx_version="9.9.9", now=NOW)
    assert _vector(body) == {
        "type": "dense_vector",
        "dims": 64,
        "index": True,
        "similarity": similarity,
        "index_options": {"type": index_type, "m": 32, "ef_construction": 256},
    }
    assert body["mappings"]["_meta"]["xlidx"]["vector"]["index_type"] == index_type


@pytest.mark.parametrize(
    ("vector", "dimension", "message"),
    [
        (VectorSpec(knn_engine="faiss"), 8, "vector engine 'faiss' is OpenSearch's"),
        (VectorSpec(knn_engine="nmslib"), 8, "vector engine 'nmslib' is OpenSearch's"),
        (VectorSpec(index_type="bbq_hnsw"), 63, "bbq_hnsw needs at least 64 dimensions"),
        (VectorSpec(), 4097, "at most 4096 dimensions"),
    ],
)
def test_mapping_errors(vector: VectorSpec, dimension: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mapping.index_body(_spec(vector, dimension), xlidx_version="9.9.9", now=NOW)


def test_analyzer_fallbacks_without_analysis_common() -> None:
    """The integ-test distribution has no language analyzers: every language falls back to
    `standard`, and `_meta` lists what was wanted."""
    body = mapping.index_body(_spec(), xlidx_version="9.9.9", now=NOW, analyzers=frozenset())
    m = body["mappings"]
    assert m["properties"]["i18n"]["properties"]["title"]["properties"] == {
        "en": {"type": "text", "analyzer": "standard"},
        "fr": {"type": "text", "analyzer": "standard"},
        "ja": {"type": "text", "analyzer": "standard"},
    }
    templates = [next(iter(t.values())) for t in m["dynamic_templates"]]
    assert {t["mapping"].get("analyzer") for t in templates[1:]} == {"standard"}
    assert templates[0] == {"path_match": "xlidx.field_langs.*", "mapping": {"type": "keyword"}}
    assert m["_meta"]["xlidx"]["analyzer_fallbacks"] == dict(
        sorted(load_template()["analyzers"].items())
    )


def test_analyzer_fallbacks_partial() -> None:
    body = mapping.index_body(
        _spec(), xlidx_version="9.9.9", now=NOW, analyzers=frozenset({"french"})
    )
    m = body["mappings"]
    assert m["properties"]["i18n"]["properties"]["title"]["properties"] == {
        "en": {"type": "text", "analyzer": "standard"},
        "fr": {"type": "text", "analyzer": "french"},
        "ja": {"type": "text", "analyzer": "standard"},
    }
    templates = {next(iter(t)): next(iter(t.values())) for t in m["dynamic_templates"]}
    assert templates["i18n_fr"]["mapping"] == {"type": "text", "analyzer": "french"}
    assert templates["i18n_en"]["mapping"] == {"type": "text", "analyzer": "standard"}
    fallbacks = m["_meta"]["xlidx"]["analyzer_fallbacks"]
    assert "fr" not in fallbacks
    assert fallbacks["en"] == "english" and fallbacks["ja"] == "cjk"


# -- capabilities by version -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "types"),
    [
        ("7.17.25", ("hnsw",)),
        ("8.11.4", ("hnsw",)),
        ("8.12.0", ("hnsw", "int8_hnsw")),
        ("8.14.3", ("hnsw", "int8_hnsw")),
        ("8.15.0", ("hnsw", "int8_hnsw", "bbq_hnsw")),
        ("8.19.3", ("hnsw", "int8_hnsw", "bbq_hnsw")),
        ("9.1.0-SNAPSHOT", ("hnsw", "int8_hnsw", "bbq_hnsw")),
        ("", ("hnsw",)),
    ],
)
def test_index_types_for(version: str, types: tuple[str, ...]) -> None:
    assert index_types_for(version) == types
