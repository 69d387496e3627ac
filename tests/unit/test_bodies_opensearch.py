"""Golden request bodies of the OpenSearch backend: BM25, kNN, hybrid, pipelines, mappings.

Each renderer is pure (plan or spec in, plain dict out) and is compared with a literal dict.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from xlidx.backends.opensearch import mapping
from xlidx.backends.opensearch.query import (
    bm25_body,
    hybrid_body,
    knn_body,
    pipeline_body,
    pipeline_name,
)
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
BM25 = {
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
KNN = {
    "nested": {
        "path": "xlidx.passages",
        "score_mode": "max",
        "query": {"knn": {"xlidx.passages.vector": {"vector": [0.5, 0.5], "k": 50}}},
    }
}


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


# -- BM25 --------------------------------------------------------------------------------------


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


def test_bm25_body_unfiltered_paged_and_lean() -> None:
    """No filter: the BM25 query is the whole query. ``size``/``offset`` override the plan's;
    ``lean`` candidates return only their language."""
    plan = Query("x").text_fields("title").offset(20).plan()
    multi = {"multi_match": {"query": "x", "fields": ["title"], "type": "best_fields"}}
    assert bm25_body(plan) == {
        "size": 10,
        "from": 20,
        "_source": {"excludes": ["xlidx.passages"]},
        "track_total_hits": False,
        "query": {"bool": {"should": [multi], "minimum_should_match": 1}},
    }
    assert bm25_body(plan, size=100, offset=0, lean=True) == {
        "size": 100,
        "from": 0,
        "_source": {"includes": ["xlidx.lang"]},
        "track_total_hits": False,
        "query": {"bool": {"should": [multi], "minimum_should_match": 1}},
    }


def test_query_language_und_adds_no_language_field() -> None:
    body = bm25_body(Query("x").text_fields("title").query_lang("und").plan())
    assert body["query"]["bool"]["should"] == [
        {"multi_match": {"query": "x", "fields": ["title"], "type": "best_fields"}}
    ]


def test_highlight_and_source() -> None:
    body = bm25_body(Query("x").text_fields("title").highlight().source("title", "year").plan())
    assert body["highlight"] == {
        "fields": {"title": {}, "i18n.title.*": {}},
        "fragment_size": 160,
        "number_of_fragments": 1,
    }
    assert body["_source"] == {
        "excludes": ["xlidx.passages"],
        "includes": ["title", "year", "xlidx.lang", "xlidx.id"],
    }
    # highlighting needs the text, so a lean request keeps the full source filter
    lean = bm25_body(Query("x").text_fields("title").highlight().plan(), lean=True)
    assert lean["_source"] == {"excludes": ["xlidx.passages"]}


# -- kNN ---------------------------------------------------------------------------------------


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
    assert knn_body(plan) == {
        "size": 3,
        "from": 2,
        "_source": {"excludes": ["xlidx.passages"]},
        "track_total_hits": False,
        "query": knn,
    }
    hybrid = hybrid_body(plan)
    assert hybrid["size"] == 20 and hybrid["from"] == 0  # the window; sliced by the caller
    assert hybrid["query"]["hybrid"]["queries"][1] == knn
    assert (
        hybrid["query"]["hybrid"]["queries"][0]["bool"]["should"][0]["multi_match"]["query"] == "x"
    )


def test_knn_body_filters_wrap_the_nested_query() -> None:
    """OpenSearch filters the nested kNN hits in a bool (k is the window, not the page)."""
    assert knn_body(_plan().plan(), lean=True) == {
        "size": 5,
        "from": 0,
        "_source": {"includes": ["xlidx.lang"]},
        "track_total_hits": False,
        "query": {"bool": {"must": [KNN], "filter": FILTERS}},
    }


def test_knn_body_needs_a_vector() -> None:
    with pytest.raises(ValueError, match="needs the query vector"):
        knn_body(Query("x").plan())


# -- hybrid ------------------------------------------------------------------------------------


def test_hybrid_body_golden() -> None:
    """Both sub-queries carry the filters; the window is asked for, from 0."""
    assert hybrid_body(_plan().offset(10).plan(), lean=True) == {
        "size": 50,
        "from": 0,
        "_source": {"includes": ["xlidx.lang"]},
        "track_total_hits": False,
        "query": {
            "hybrid": {
                "queries": [
                    {"bool": {"must": [BM25], "filter": FILTERS}},
                    {"bool": {"must": [KNN], "filter": FILTERS}},
                ]
            }
        },
    }


def test_pipelines() -> None:
    assert pipeline_name("minmax", (0.11, 0.5), 60) == "xlidx-hybrid-v1-minmax-0.18-0.82"
    assert pipeline_name("minmax", (0.0, 0.75), 60) == "xlidx-hybrid-v1-minmax-0.00-1.00"
    assert pipeline_name("rrf", (1, 1), 60) == "xlidx-hybrid-v1-rrf-60"
    assert pipeline_name("rrf", (1, 1), 10) == "xlidx-hybrid-v1-rrf-10"
    assert pipeline_body("minmax", (1.0, 3.0), 60) == {
        "description": "xlidx hybrid fusion (minmax), pipeline version 1",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {
                        "technique": "arithmetic_mean",
                        "parameters": {"weights": [0.25, 0.75]},
                    },
                }
            }
        ],
    }
    assert pipeline_body("rrf", (1.0, 1.0), 40) == {
        "description": "xlidx hybrid fusion (rrf), pipeline version 1",
        "phase_results_processors": [
            {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 40}}}
        ],
    }


# -- mappings ----------------------------------------------------------------------------------


def _spec(vector: VectorSpec | None = None, **kw: Any) -> IndexSpec:
    return IndexSpec(
        name="docs",
        embedding=EMB,
        text_fields=("title",),
        languages=("en", "fr"),
        translate_to=("ja",),
        vector=vector or VectorSpec(),
        **kw,
    )


def test_mapping_knn_vector() -> None:
    body = mapping.index_body(_spec(), xlidx_version="9.9.9", now=NOW)
    assert body["settings"] == {
        "index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}
    }
    assert body["mappings"]["properties"]["xlidx"]["properties"]["passages"] == {
        "type": "nested",
        "properties": {
            "vector": {
                "type": "knn_vector",
                "dimension": 8,
                "method": {
                    "name": "hnsw",
                    "engine": "lucene",
                    "space_type": "cosinesimil",
                    "parameters": {"m": 16, "ef_construction": 128},
                },
            },
            "lang": {"type": "keyword"},
            "field": {"type": "keyword"},
            "n": {"type": "integer"},
            "center": {"type": "keyword"},
            "norm": {"type": "float", "index": False},
        },
    }
    x = body["mappings"]["_meta"]["xlidx"]
    assert x["backend"] == "opensearch"
    assert x["vector"] == {
        "engine": "lucene",
        "method": "hnsw",
        "space_type": "cosinesimil",
        "m": 16,
        "ef_construction": 128,
        "index_type": "hnsw",
    }
    assert "analyzer_fallbacks" not in x  # analyzers=None: the cluster is assumed to have all


@pytest.mark.parametrize("index_type", ["int8_hnsw", "bbq_hnsw"])
def test_mapping_rejects_elasticsearch_index_types(index_type: str) -> None:
    spec = _spec(VectorSpec(index_type=index_type))
    with pytest.raises(ConfigError, match=f"vector index type '{index_type}' is Elasticsearch's"):
        mapping.index_body(spec, xlidx_version="9.9.9", now=NOW)


def test_mapping_vector_meta_round_trips() -> None:
    v = VectorSpec(knn_engine="faiss", space_type="innerproduct", m=24, ef_construction=200)
    assert VectorSpec.from_meta(v.to_meta()) == v
    assert v.to_meta()["engine"] == "faiss"  # the key indices made before the rename carry
    assert VectorSpec.from_meta({"engine": "faiss", "unknown": 1}, m=None, ef_construction=64) == (
        VectorSpec(knn_engine="faiss", ef_construction=64)
    )


def test_analyzer_fallbacks() -> None:
    """A language whose analyzer the cluster lacks is analyzed with `standard`, in the fixed
    fields and in the dynamic templates, and `_meta` says so."""
    body = mapping.index_body(
        _spec(), xlidx_version="9.9.9", now=NOW, analyzers=frozenset({"english", "cjk"})
    )
    m = body["mappings"]
    assert m["properties"]["i18n"]["properties"]["title"]["properties"] == {
        "en": {"type": "text", "analyzer": "english"},
        "fr": {"type": "text", "analyzer": "standard"},
        "ja": {"type": "text", "analyzer": "cjk"},
    }
    templates = {next(iter(t)): next(iter(t.values())) for t in m["dynamic_templates"]}
    analyzer = {k: t["mapping"].get("analyzer") for k, t in templates.items()}
    assert analyzer["i18n_en"] == "english" and analyzer["i18n_ko"] == "cjk"
    assert analyzer["i18n_fr"] == "standard" and analyzer["i18n_de"] == "standard"
    wanted = load_template()["analyzers"]
    fallbacks = m["_meta"]["xlidx"]["analyzer_fallbacks"]
    assert fallbacks["fr"] == "french" and fallbacks["de"] == "german"
    assert fallbacks == {
        lang: a for lang, a in sorted(wanted.items()) if a not in ("english", "cjk")
    }
    # the vector field and the index settings do not depend on the analyzers
    plain = mapping.index_body(_spec(), xlidx_version="9.9.9", now=NOW)
    assert plain["settings"] == body["settings"]
    assert plain["mappings"]["properties"]["xlidx"] == m["properties"]["xlidx"]
