"""Golden tests of the mapping builder, the _meta model check and the document builder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timezone

import pytest

from xlidx.backends.opensearch.mapping import index_body
from xlidx.documents import Prepared, Record
from xlidx.errors import ConfigError, MappingError, ModelMismatch
from xlidx.pipeline.write import build_document
from xlidx.spec import (
    IndexSpec,
    VectorSpec,
    check_model,
    merge_packages,
    parse_versioned,
    validate_index_name,
)

EMB = {
    "model": "tiny",
    "dimension": 8,
    "similarity": "cosine",
    "query_prompt": "query: ",
    "document_prompt": "passage: ",
    "max_tokens": 32,
    "backend": "sentence-transformers",
}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _golden_spec() -> IndexSpec:
    return IndexSpec(
        name="docs",
        embedding=EMB,
        text_fields=("title", "body"),
        languages=("en", "fr"),
        translate_to=("ja",),
        vector=VectorSpec(knn_engine="faiss", space_type="innerproduct", m=24, ef_construction=200),
    )


def test_index_body_golden() -> None:
    """The OpenSearch index body (the engine-neutral spec rendered by the OpenSearch backend)."""
    body = index_body(_golden_spec(), xlidx_version="9.9.9", now=NOW)
    assert body["settings"] == {
        "index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}
    }
    m = body["mappings"]
    assert m["_meta"] == {
        "xlidx": {
            "mapping_version": 2,
            "xlidx_version": "9.9.9",
            "created_at": "2026-01-02T03:04:05+00:00",
            "text_fields": ["title", "body"],
            "languages": ["en", "fr"],
            "detection": {},
            "translate_to": ["ja"],
            "translation_packages": [],
            "embedding": EMB,
            "vector": {
                "engine": "faiss",
                "method": "hnsw",
                "space_type": "innerproduct",
                "m": 24,
                "ef_construction": 200,
                "index_type": "hnsw",
            },
            "backend": "opensearch",
            "analyzers": m["_meta"]["xlidx"]["analyzers"],
        }
    }
    chosen = m["_meta"]["xlidx"]["analyzers"]  # no plugin analyzers: built-in or standard
    assert chosen["ja"] == "cjk" and chosen["el"] == "greek" and chosen["nn"] == "norwegian"
    assert chosen["pl"] == chosen["uk"] == chosen["*"] == "standard"
    props = m["properties"]
    assert props["title"] == {"type": "text", "analyzer": "standard"}
    assert props["i18n"]["properties"]["body"]["properties"] == {
        "en": {"type": "text", "analyzer": "english"},
        "fr": {"type": "text", "analyzer": "french"},
        "ja": {"type": "text", "analyzer": "cjk"},
    }
    assert props["xlidx"]["properties"]["passages"] == {
        "type": "nested",
        "properties": {
            "vector": {
                "type": "knn_vector",
                "dimension": 8,
                "method": {
                    "name": "hnsw",
                    "engine": "faiss",
                    "space_type": "innerproduct",
                    "parameters": {"m": 24, "ef_construction": 200},
                },
            },
            "lang": {"type": "keyword"},
            "field": {"type": "keyword"},
            "n": {"type": "integer"},
            "center": {"type": "keyword"},
            "norm": {"type": "float", "index": False},
        },
    }
    templates = {next(iter(t)): next(iter(t.values())) for t in m["dynamic_templates"]}
    assert templates["i18n_de"] == {
        "path_match": "i18n.*.de",
        "match_mapping_type": "string",
        "mapping": {"type": "text", "analyzer": "german"},
    }
    assert templates["i18n_other"]["mapping"] == {"type": "text", "analyzer": "standard"}
    assert list(templates)[-1] == "i18n_other"  # the fallback comes last


# sha256 of json.dumps(body["mappings"]) for _golden_spec() as xlidx produced it before the
# backend split (xlidx/mapping/spec.py at 6883eae): 6417 bytes, keys in that order.
MAPPINGS_BEFORE_BACKENDS = "c8c9d1d7388dba14945b8977aaa765aeb7fdcc7ae95849271df35cb658d2539f"


def test_index_body_unchanged_by_the_backend_split() -> None:
    """Byte for byte what the OpenSearch mapping was, but for the two keys `_meta` gained."""
    spec = dataclasses.replace(_golden_spec(), mapping_version=1)
    body = index_body(spec, xlidx_version="9.9.9", now=NOW)
    x = body["mappings"]["_meta"]["xlidx"]
    assert x.pop("backend") == "opensearch"
    assert x.pop("analyzers")["en"] == "english"
    assert x.pop("detection") == {}
    assert x["vector"].pop("index_type") == "hnsw"
    dumped = json.dumps(body["mappings"]).encode()
    assert len(dumped) == 6417
    assert hashlib.sha256(dumped).hexdigest() == MAPPINGS_BEFORE_BACKENDS
    assert body["settings"] == {
        "index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}
    }


@pytest.mark.parametrize("name", ["Docs", "docs-v2", "-x", "a b", "", "x/y"])
def test_bad_index_names(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid index name"):
        validate_index_name(name)


def test_versioned_names() -> None:
    assert parse_versioned("my-docs-v12") == ("my-docs", 12)
    assert parse_versioned("my-docs") is None


def test_bad_vector_spec() -> None:
    with pytest.raises(ConfigError, match="unknown vector engine"):
        VectorSpec(knn_engine="annoy")
    with pytest.raises(ConfigError, match="unknown space type"):
        VectorSpec(space_type="hamming")


def test_check_model() -> None:
    meta = {"xlidx": {"embedding": EMB}}
    check_model(meta, dict(EMB), "docs")
    with pytest.raises(
        ModelMismatch, match=r"built with model 'tiny' \(8-d\); refusing to use 'usem3'"
    ):
        check_model(meta, {**EMB, "model": "usem3", "dimension": 512}, "docs")
    with pytest.raises(ModelMismatch, match="differs in query_prompt"):
        check_model(meta, {**EMB, "query_prompt": ""}, "docs")
    with pytest.raises(MappingError, match="no xlidx embedding metadata"):
        check_model({}, EMB, "docs")


def test_merge_packages() -> None:
    a = {"from": "fr", "to": "en", "version": "1"}
    b = {"from": "de", "to": "en", "version": "1"}
    assert merge_packages([a], [b, a]) == [a, b]


def _prepared() -> Prepared:
    rec = Record(
        id="d1",
        texts={"title": "Le chat", "body": "Il dort."},
        extra={"year": 2020},
        lang=None,
        origin="f:1",
        content_hash="h",
        content_id="c",
    )
    p = Prepared(rec, field_langs={"title": "und", "body": "fr"})
    p.translations = {"body": {"en": "He sleeps."}}
    p.vectors = [[0.1, 0.2], [0.3, 0.4]]
    return p


def test_build_document_golden() -> None:
    doc = build_document(_prepared(), model="tiny", now=NOW)
    assert doc == {
        "year": 2020,
        "title": "Le chat",
        "body": "Il dort.",
        "i18n": {"body": {"en": "He sleeps.", "fr": "Il dort."}},
        "xlidx": {
            "id": "d1",
            "lang": "fr",  # the longest field's language
            "lang_declared": False,
            "langs": ["en", "fr"],
            "field_langs": {"title": "und", "body": "fr"},
            "translated_to": ["en"],
            "content_hash": "h",
            "content_id": "c",
            "model": "tiny",
            "passage_count": 2,
            "indexed_at": "2026-01-02T03:04:05+00:00",
            "passages": [
                {"vector": [0.1, 0.2], "n": 0, "lang": "fr"},
                {"vector": [0.3, 0.4], "n": 1, "lang": "fr"},
            ],
        },
    }


def test_analyzer_choice_prefers_plugins_then_builtin_then_icu() -> None:
    from xlidx.spec import analyzer_fallbacks, analyzer_for, wanted_analyzers

    builtin = {"english", "greek", "thai", "cjk", "hindi", "arabic", "turkish"}
    with_plugins = frozenset({*builtin, "kuromoji", "nori", "icu_analyzer"})
    assert analyzer_for("ja", available=with_plugins) == "kuromoji"
    assert analyzer_for("ko", available=with_plugins) == "nori"
    assert analyzer_for("zh", available=with_plugins) == "cjk"  # no smartcn: built-in
    assert analyzer_for("el", available=with_plugins) == "greek"
    assert analyzer_for("vi", available=with_plugins) == "icu_analyzer"  # no analyzer of its own
    assert analyzer_for("vi", available=frozenset(builtin)) == "standard"
    assert analyzer_for("ja", available=None) == "cjk"  # None: built-ins assumed, no plugins
    assert analyzer_for("th", available=frozenset()) == "standard"
    assert {"kuromoji", "nori", "smartcn", "icu_analyzer", "thai"} <= wanted_analyzers()
    # a missing built-in is a fallback, whether icu or standard stands in
    assert analyzer_fallbacks(["th", "en"], frozenset({"english", "icu_analyzer"})) == {
        "th": "thai"
    }
    assert analyzer_fallbacks(["th", "en"], frozenset({"english", "thai"})) == {}
