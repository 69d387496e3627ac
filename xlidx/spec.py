"""Index spec → mapping body, and the ``_meta`` checks (pure functions over data).

The template is data: ``mappings/document.v<N>.json``. A document is laid out as::

    <text field>            the original text, standard analyzer (title, body, …)
    i18n.<field>.<lang>     the text in <lang> (the original where <lang> is its language, a
                            machine translation otherwise), analyzed by <lang>'s analyzer
    xlidx.*                 keywords (id, lang, langs, content_hash, model, …) and
    xlidx.passages[]        nested: one knn_vector per passage (long text is split, never cut)

Other fields of the input record are stored as they came (dynamic mapping).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from xlidx.config import env_mappings_dir
from xlidx.errors import ConfigError, MappingError, ModelMismatch

MAPPING_VERSION = 2
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,200}$")
_VERSIONED = re.compile(r"^(?P<alias>.+)-v(?P<version>\d+)$")
KNN_ENGINES = ("lucene", "faiss", "nmslib")  # the vector libraries of OpenSearch's k-NN
SPACES = ("cosinesimil", "innerproduct", "l2")
# Elasticsearch's dense_vector index_options types (OpenSearch: hnsw only)
INDEX_TYPES = ("hnsw", "int8_hnsw", "bbq_hnsw")


def validate_index_name(name: str) -> str:
    if not _INDEX_NAME.match(name) or _VERSIONED.match(name):
        raise ConfigError(
            f"invalid index name {name!r}: use lowercase letters, digits, '-', '_' or '.', "
            "not ending in -v<N> (xlidx adds the version itself)"
        )
    return name


def versioned_name(alias: str, version: int) -> str:
    return f"{alias}-v{version}"


def parse_versioned(index: str) -> tuple[str, int] | None:
    m = _VERSIONED.match(index)
    return (m.group("alias"), int(m.group("version"))) if m else None


@dataclass(frozen=True)
class VectorSpec:
    """The kNN field: the vector library (``knn_engine``: lucene on the dev node, faiss in
    production), method, space.

    ``knn_engine`` is OpenSearch's k-NN engine, not the search engine (the backend);
    ``_meta`` records it as ``engine``. ``index_type`` is Elasticsearch's
    ``index_options.type`` (``hnsw``, or the quantized ``int8_hnsw`` / ``bbq_hnsw``);
    OpenSearch takes ``hnsw`` only.
    """

    knn_engine: str = "lucene"
    method: str = "hnsw"
    space_type: str = "cosinesimil"
    m: int = 16
    ef_construction: int = 128
    index_type: str = "hnsw"

    def __post_init__(self) -> None:
        if self.knn_engine not in KNN_ENGINES:
            raise ConfigError(
                f"unknown vector engine {self.knn_engine!r}: expected {', '.join(KNN_ENGINES)}"
            )
        if self.space_type not in SPACES:
            raise ConfigError(
                f"unknown space type {self.space_type!r}: expected {', '.join(SPACES)}"
            )
        if self.method != "hnsw":
            raise ConfigError(f"unsupported method {self.method!r}: only hnsw")
        if self.index_type not in INDEX_TYPES:
            raise ConfigError(
                f"unknown vector index type {self.index_type!r}: expected {', '.join(INDEX_TYPES)}"
            )

    def method_body(self) -> dict[str, Any]:
        return {
            "name": self.method,
            "engine": self.knn_engine,
            "space_type": self.space_type,
            "parameters": {"m": self.m, "ef_construction": self.ef_construction},
        }

    def to_meta(self) -> dict[str, Any]:
        return {
            "engine": self.knn_engine,  # the key existing indices carry
            "method": self.method,
            "space_type": self.space_type,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "index_type": self.index_type,
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], **overrides: Any) -> VectorSpec:
        """The spec an index's ``_meta.xlidx.vector`` records (its ``engine`` is
        ``knn_engine``), with ``overrides`` (field names) applied; ``None`` values are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        renamed = {("knn_engine" if k == "engine" else k): v for k, v in meta.items()}
        values = {k: v for k, v in renamed.items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class IndexSpec:
    """Everything that decides an index's mapping and what produced its vectors."""

    name: str
    embedding: Mapping[str, Any]  # Embedder.describe(): model, dimension, similarity, prompts…
    text_fields: tuple[str, ...] = ("title", "body", "text")
    languages: tuple[str, ...] = ()  # detection restricted to these; () = every language
    detection: Mapping[str, Any] = field(default_factory=dict)  # Detector.describe()
    translate_to: tuple[str, ...] = ()
    translation_packages: tuple[Mapping[str, Any], ...] = ()
    vector: VectorSpec = field(default_factory=VectorSpec)
    mapping_version: int = MAPPING_VERSION
    shards: int | None = None  # primary shards; None: the template's (1)
    replicas: int | None = None  # replicas of each shard; None: the template's (0)

    def __post_init__(self) -> None:
        validate_index_name(self.name)
        check_shards(self.shards, self.replicas)
        dim = self.embedding.get("dimension")
        if not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"embedding dimension must be a positive integer, got {dim!r}")


def check_shards(shards: object, replicas: object) -> None:
    """``shards`` a positive integer, ``replicas`` 0 or more (``None``: the default)."""
    for flag, value, least in (("--shards", shards, 1), ("--replicas", replicas, 0)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{flag} must be an integer of {least} or more, got {value!r}")


def shards_of(settings: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Primary shards and replicas from ``GET <index>/_settings``'s ``settings`` (pure);
    ``None`` for what it does not say."""
    index = settings.get("index", {})

    def get(key: str) -> int | None:
        value = index.get(key, settings.get(f"index.{key}"))
        return int(value) if value is not None and str(value).isdigit() else None

    return get("number_of_shards"), get("number_of_replicas")


def mappings_dir() -> Path:
    """Where the JSON templates are: $XLIDX_MAPPINGS_DIR, the source tree, or the install."""
    candidates = [
        env_mappings_dir(),
        str(Path(__file__).resolve().parents[1] / "mappings"),
        str(Path(sys.prefix) / "share" / "xlidx" / "mappings"),
    ]
    for c in candidates:
        if c and (Path(c) / f"document.v{MAPPING_VERSION}.json").is_file():
            return Path(c)
    raise MappingError("mapping templates not found: set XLIDX_MAPPINGS_DIR to xlidx's mappings/")


@cache
def load_template(version: int = MAPPING_VERSION) -> dict[str, Any]:
    path = mappings_dir() / f"document.v{version}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"no mapping template for version {version}: {path}") from None
    return data


def analyzer_for(
    lang: str,
    template: Mapping[str, Any] | None = None,
    available: frozenset[str] | None = None,
) -> str:
    """The analyzer for ``lang`` given the analyzers the cluster has (``available``; ``None``:
    every built-in one, no plugin), first found of:

    1. the language's plugin analyzer (``kuromoji`` for ja, ``nori`` for ko, ``smartcn`` for
       zh, ``polish``, ``ukrainian``), when the cluster has the plugin;
    2. its built-in language analyzer (``english``, ``greek``, ``thai``, ``cjk``, …);
    3. ``icu_analyzer`` (analysis-icu: Unicode word segmentation and folding, for every
       script), when the cluster has it;
    4. ``standard``.
    """
    t = template if template is not None else load_template()
    fallback: str = t["fallback_analyzer"]
    plugin = t.get("plugin_analyzers", {}).get(lang)
    if plugin and available is not None and plugin in available:
        return str(plugin)
    builtin = t["analyzers"].get(lang)
    if builtin and (available is None or builtin in available):
        return str(builtin)
    icu = t.get("plugin_fallback_analyzer")
    if icu and available is not None and icu in available:
        return str(icu)
    return fallback


def template_languages(template: Mapping[str, Any] | None = None) -> list[str]:
    """Every language the template names an analyzer for."""
    t = template if template is not None else load_template()
    return sorted(set(t["analyzers"]) | set(t.get("plugin_analyzers", {})))


def wanted_analyzers(template: Mapping[str, Any] | None = None) -> frozenset[str]:
    """Every language and plugin analyzer the template may use (what to probe a cluster for)."""
    t = template if template is not None else load_template()
    names = {*t["analyzers"].values(), *t.get("plugin_analyzers", {}).values()}
    if t.get("plugin_fallback_analyzer"):
        names.add(t["plugin_fallback_analyzer"])
    return frozenset(names) - {t["fallback_analyzer"]}


def analyzer_fallbacks(
    langs: Sequence[str],
    available: frozenset[str] | None,
    template: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """``{lang: missing analyzer}`` for the languages whose built-in language analyzer the
    cluster lacks (they get ``icu_analyzer`` or ``standard`` instead)."""
    t = template if template is not None else load_template()
    return {
        lang: t["analyzers"][lang]
        for lang in sorted(set(langs))
        if lang in t["analyzers"]
        and analyzer_for(lang, t, available)
        in (t["fallback_analyzer"], t.get("plugin_fallback_analyzer"))
    }


def _fill(node: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if isinstance(node, str) and node.startswith("{{") and node.endswith("}}"):
        return values[node[2:-2]]
    return node


def build_meta(
    spec: IndexSpec,
    xlidx_version: str,
    now: datetime | None = None,
    *,
    engine: str | None = None,
    fallbacks: Mapping[str, str] | None = None,
    chosen: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    created = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    meta: dict[str, Any] = {
        "xlidx": {
            "mapping_version": spec.mapping_version,
            "xlidx_version": xlidx_version,
            "created_at": created,
            "text_fields": list(spec.text_fields),
            "languages": list(spec.languages),
            "detection": dict(spec.detection),
            "translate_to": list(spec.translate_to),
            "translation_packages": [dict(p) for p in spec.translation_packages],
            "embedding": dict(spec.embedding),
            "vector": spec.vector.to_meta(),
        }
    }
    if engine is not None:
        meta["xlidx"]["backend"] = engine
    if fallbacks:
        # the languages whose analyzer this cluster lacks, analyzed with `standard` instead
        meta["xlidx"]["analyzer_fallbacks"] = dict(fallbacks)
    if chosen:
        # the analyzer of each language's i18n fields; "*": every other language
        meta["xlidx"]["analyzers"] = dict(chosen)
    return meta


def build_index_body(
    spec: IndexSpec,
    *,
    xlidx_version: str,
    vector_field: Mapping[str, Any],
    engine: str | None = None,
    now: datetime | None = None,
    analyzers: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The body of ``PUT <index>`` for ``spec`` (pure, given the template).

    The engine-neutral part: a backend passes the mapping of its vector field (and adds its
    own index settings). ``analyzers``: the language analyzers the cluster has (``None``: all).
    """
    t = load_template(spec.mapping_version)
    props: dict[str, Any] = _fill(copy.deepcopy(t["properties"]), {"vector": dict(vector_field)})
    langs = sorted(set(spec.languages) | set(spec.translate_to))
    for f in spec.text_fields:
        props[f] = {"type": "text", "analyzer": "standard"}
    props["i18n"] = {
        "properties": {
            f: {
                "properties": {
                    lang: {"type": "text", "analyzer": analyzer_for(lang, t, analyzers)}
                    for lang in langs
                }
            }
            for f in spec.text_fields
        }
    }
    dynamic_templates: list[dict[str, Any]] = [
        {
            "xlidx_field_langs": {
                "path_match": "xlidx.field_langs.*",
                "mapping": {"type": "keyword"},
            }
        },
        *(
            {
                f"i18n_{lang}": {
                    "path_match": f"i18n.*.{lang}",
                    "match_mapping_type": "string",
                    "mapping": {"type": "text", "analyzer": analyzer_for(lang, t, analyzers)},
                }
            }
            for lang in template_languages(t)
        ),
        {
            "i18n_other": {
                "path_match": "i18n.*",
                "match_mapping_type": "string",
                "mapping": {"type": "text", "analyzer": analyzer_for("*", t, analyzers)},
            }
        },
    ]
    settings: dict[str, Any] = copy.deepcopy(t["settings"])
    index_settings = settings.setdefault("index", {})
    if spec.shards is not None:
        index_settings["number_of_shards"] = spec.shards
    if spec.replicas is not None:
        index_settings["number_of_replicas"] = spec.replicas
    return {
        "settings": settings,
        "mappings": {
            "_meta": build_meta(
                spec,
                xlidx_version,
                now,
                engine=engine,
                fallbacks=analyzer_fallbacks(list(t["analyzers"]), analyzers, t),
                chosen={
                    **{lang: analyzer_for(lang, t, analyzers) for lang in template_languages(t)},
                    "*": analyzer_for("*", t, analyzers),
                },
            ),
            "dynamic_templates": dynamic_templates,
            "properties": props,
        },
    }


_MODEL_KEYS = ("model", "dimension", "query_prompt", "document_prompt")


def check_model(meta: Mapping[str, Any], embedding: Mapping[str, Any], index: str) -> None:
    """Refuse to write or query ``index`` with a model other than the one in its ``_meta``."""
    recorded = meta.get("xlidx", {}).get("embedding")
    if not isinstance(recorded, Mapping):
        raise MappingError(f"index {index!r} has no xlidx embedding metadata in its _meta")
    diffs = [k for k in _MODEL_KEYS if recorded.get(k) != embedding.get(k)]
    if diffs:
        raise ModelMismatch(
            f"index {index!r} was built with model {recorded.get('model')!r} "
            f"({recorded.get('dimension')}-d); refusing to use {embedding.get('model')!r} "
            f"({embedding.get('dimension')}-d; differs in {', '.join(diffs)}): pass "
            f"--model {recorded.get('source') or recorded.get('model')}, or move the index to "
            "the new model with "
            f"`xlidx index migrate {index} --model …`"
        )


def merge_packages(
    recorded: Sequence[Mapping[str, Any]], used: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Union of translation package descriptions, stable order, no duplicates."""
    out: list[dict[str, Any]] = [dict(p) for p in recorded]
    seen = {json.dumps(p, sort_keys=True) for p in out}
    for p in used:
        key = json.dumps(dict(p), sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(dict(p))
    return out
