"""Create, inspect, roll back, prune and delete an xlidx index; list a cluster's indices.

Each workflow is a call into :mod:`xlidx.indices.manage` and a typed result whose
``to_json()`` is what ``xlidx index … --json`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from xlidx.errors import ConfigError

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.spec import IndexSpec, VectorSpec
    from xlidx.workflows.index import Index


@dataclass(frozen=True)
class Created:
    """What :meth:`Index.create <xlidx.workflows.index.Index.create>` found or made."""

    name: str
    index: str  # the version the alias points at (NAME-v1 when created now)
    created: bool  # False: the index existed (and its model is the one asked for)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "index": self.index, "created": self.created}


@dataclass(frozen=True)
class IndexStatus:
    """Version, documents, model, languages and analyzers of an xlidx index."""

    name: str
    index: str
    version: int
    versions: list[str]
    engine: str | None  # the search engine the index was made on
    documents: int
    languages: dict[str, int]  # documents per detected language, ``und`` included
    model: str | None
    model_source: str | None
    dimension: int | None
    backend: str | None  # the embedding backend
    translate_to: list[str]
    translation_packages: list[Any]
    text_fields: list[str]
    vector: dict[str, Any]
    mapping_version: int | None
    xlidx_version: str | None
    created_at: str | None
    analyzer_fallbacks: dict[str, str]  # language → the analyzer the cluster lacks
    analyzers: dict[str, str]  # language → the analyzer of its text fields
    und_share: float  # share of documents with no detected language
    calibration: dict[str, Any] | None  # the calibration without its means

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> IndexStatus:
        values: dict[str, Any] = {f.name: report.get(f.name) for f in fields(cls)}
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RolledBack:
    name: str
    from_index: str
    to_index: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "from": self.from_index, "to": self.to_index}


@dataclass(frozen=True)
class Pruned:
    name: str
    current: str
    deleted: list[str]
    kept: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current, "deleted": self.deleted,
                "kept": self.kept}  # fmt: skip


@dataclass(frozen=True)
class Deleted:
    name: str
    deleted: list[str]  # the versions deleted with the alias

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "deleted": self.deleted}


@dataclass(frozen=True)
class IndexRow:
    """One index of the cluster, as ``xlidx index list`` shows it."""

    index: str
    aliases: list[str]
    health: str | None
    docs: int | None
    size: str | None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "aliases": self.aliases, "health": self.health,
                "docs": self.docs, "size": self.size}  # fmt: skip


def list_indices(backend: Backend) -> list[IndexRow]:
    """The cluster's indices (hidden ``.``-indices left out), by name, with their aliases."""
    by_index: dict[str, list[str]] = {}
    for a in backend.cat_aliases():
        by_index.setdefault(a["index"], []).append(a["alias"])
    rows = sorted(
        (r for r in backend.cat_indices() if not r["index"].startswith(".")),
        key=lambda r: r["index"],
    )
    return [
        IndexRow(
            index=r["index"],
            aliases=sorted(by_index.get(r["index"], [])),
            health=r.get("health"),
            docs=int(r["docs.count"]) if r.get("docs.count") not in (None, "") else None,
            size=r.get("store.size"),
        )
        for r in rows
    ]


def create(
    index: Index,
    spec: IndexSpec | None = None,
    *,
    model: str | None = None,
    device: str | None = None,
    languages: Sequence[str] | None = None,
    translate_to: Sequence[str] | None = None,
    text_fields: Sequence[str] | None = None,
    vector: VectorSpec | None = None,
    shards: int | None = None,
    replicas: int | None = None,
) -> Created:
    """``index``'s first version for ``spec``, or for the settings given (the embedder is
    loaded to describe it); nothing changes when the index exists with the same model."""
    from xlidx.indices.manage import ensure
    from xlidx.spec import check_model

    knobs = (model, device, languages, translate_to, text_fields, vector, shards, replicas)
    if spec is None:
        spec = spec_for(index, model=model, device=device or "auto", languages=languages,
                        translate_to=translate_to, text_fields=text_fields, vector=vector,
                        shards=shards, replicas=replicas)  # fmt: skip
    elif any(k is not None for k in knobs):
        raise ConfigError("give create() an IndexSpec or its settings, not both")
    elif spec.name != index.name:
        raise ConfigError(f"the spec is for {spec.name!r}, not for {index.name!r}")
    state, created = ensure(index.backend, spec)
    if not created:
        check_model(state.meta, spec.embedding, index.name)
    return Created(name=index.name, index=state.index, created=created)


def spec_for(
    index: Index,
    *,
    model: str | None,
    device: str,
    languages: Sequence[str] | None,
    translate_to: Sequence[str] | None,
    text_fields: Sequence[str] | None,
    vector: VectorSpec | None,
    shards: int | None,
    replicas: int | None,
) -> IndexSpec:
    """The spec of a new index: settings checked, then the cluster reached, then the model
    loaded (its description goes into the index's ``_meta``)."""
    from xlidx.documents import DEFAULT_TEXT_FIELDS
    from xlidx.pipeline.detect import parse_languages
    from xlidx.pipeline.embed import load_embedder
    from xlidx.pipeline.fingerprint import model_source
    from xlidx.spec import IndexSpec, VectorSpec, check_shards, validate_index_name
    from xlidx.workflows.models import resolve_model

    validate_index_name(index.name)
    check_shards(shards, replicas)
    targets = parse_languages(translate_to) if translate_to else ()
    langs = parse_languages(languages or ())  # () = every language lingua knows
    _ = index.backend  # the cluster is reached before a model loads
    embedder = load_embedder(resolve_model(model, None), device=device)
    return IndexSpec(
        name=index.name,
        embedding={**embedder.describe(), "source": model_source(embedder)},
        text_fields=tuple(DEFAULT_TEXT_FIELDS if text_fields is None else text_fields),
        languages=langs,
        translate_to=targets,
        vector=vector if vector is not None else VectorSpec(),
        shards=shards,
        replicas=replicas,
    )


def status(backend: Backend, name: str) -> IndexStatus:
    from xlidx.indices.manage import status as index_status

    return IndexStatus.from_report(index_status(backend, name))


def rollback(backend: Backend, name: str) -> RolledBack:
    from xlidx.indices.manage import rollback as do_rollback

    report = do_rollback(backend, name)
    return RolledBack(name=report["name"], from_index=report["from"], to_index=report["to"])


def prune(backend: Backend, name: str, keep: int) -> Pruned:
    from xlidx.indices.manage import prune as do_prune

    report = do_prune(backend, name, keep)
    return Pruned(name=report["name"], current=report["current"], deleted=report["deleted"],
                  kept=report["kept"])  # fmt: skip


def delete(backend: Backend, name: str) -> Deleted:
    from xlidx.indices.manage import delete as do_delete

    report = do_delete(backend, name)
    return Deleted(name=report["name"], deleted=report["deleted"])
