"""Versioned indices behind aliases: create, inspect, migrate, roll back, prune and delete.

``NAME`` is always an alias; the data lives in ``NAME-v1``, ``NAME-v2``, …. ``migrate`` builds
the next version, copies (and, for a new model, re-embeds) every document, checks the counts,
then moves the alias in one atomic ``_aliases`` call and keeps the old version for rollback.
``rollback`` moves the alias back to the newest older version, ``prune`` deletes old versions
the alias does not point at, ``delete`` removes the alias and every version.

Everything here talks to the cluster through a :class:`~xlidx.backends.base.Backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xlidx.backends.base import Backend, RawHit
from xlidx.errors import BackendError, ConfigError, IndexNotFound, MappingError
from xlidx.indices.writer import BulkWriter, ItemFailure
from xlidx.pipeline.patience import Patience
from xlidx.spec import (
    IndexSpec,
    parse_versioned,
    validate_index_name,
    versioned_name,
    wanted_analyzers,
)


@dataclass(frozen=True)
class IndexState:
    alias: str
    index: str  # the concrete NAME-vN the alias points at
    version: int
    meta: Mapping[str, Any]

    @property
    def xlidx_meta(self) -> Mapping[str, Any]:
        m = self.meta.get("xlidx", {})
        return m if isinstance(m, Mapping) else {}


def _xlidx_version() -> str:
    from xlidx import __version__

    return __version__


def resolve(backend: Backend, name: str) -> IndexState | None:
    """The state of xlidx index ``name``, or ``None`` when nothing of that name exists."""
    validate_index_name(name)
    aliases = backend.alias_targets(name)
    targets = list(aliases)
    if not targets:
        if backend.index_exists(name):
            raise MappingError(
                f"{name!r} is a plain index, not an xlidx alias: pick another name, or migrate "
                "it with `xlidx ingest --from-index`"
            )
        return None
    if len(targets) > 1:
        writes = [i for i in targets if aliases[i].get("is_write_index")]
        if len(writes) != 1:
            raise MappingError(
                f"alias {name!r} points at several indices: {', '.join(sorted(targets))}"
            )
        targets = writes
    index = targets[0]
    parsed = parse_versioned(index)
    if parsed is None or parsed[0] != name:
        raise MappingError(f"alias {name!r} points at {index!r}, which is not {name}-v<N>")
    meta = backend.get_meta(index)
    if "xlidx" not in meta:
        raise MappingError(f"index {index!r} has no xlidx _meta: it was not created by xlidx")
    return IndexState(alias=name, index=index, version=parsed[1], meta=meta)


def version_state(backend: Backend, index: str) -> IndexState:
    """The state of one concrete version ``NAME-v<N>`` (whether the alias points at it or not)."""
    parsed = parse_versioned(index)
    if parsed is None:
        raise MappingError(f"{index!r} is not an xlidx index version (NAME-v<N>)")
    meta = backend.get_meta(index)
    if "xlidx" not in meta:
        raise MappingError(f"index {index!r} has no xlidx _meta: it was not created by xlidx")
    return IndexState(alias=parsed[0], index=index, version=parsed[1], meta=meta)


def all_versions(backend: Backend, name: str) -> list[str]:
    """``NAME-v<N>`` indices, oldest first."""
    versions = [(parse_versioned(i), i) for i in backend.list_indices(f"{name}-v*")]
    return [i for v, i in sorted((v, i) for v, i in versions if v and v[0] == name)]


def create_version(backend: Backend, spec: IndexSpec, version: int, *, alias: bool) -> str:
    """Create ``NAME-v<version>`` for ``spec``; languages whose analyzer the cluster lacks
    fall back to ``standard`` (recorded in ``_meta.xlidx.analyzer_fallbacks``)."""
    index = versioned_name(spec.name, version)
    available = backend.available_analyzers(wanted_analyzers())
    body = backend.index_body(spec, xlidx_version=_xlidx_version(), analyzers=available)
    if alias:
        body["aliases"] = {spec.name: {"is_write_index": True}}
    backend.create_index(index, body)
    return index


def ensure(backend: Backend, spec: IndexSpec) -> tuple[IndexState, bool]:
    """The index for ``spec``: the existing one (unchanged), or a new ``NAME-v1``. Idempotent.

    Returns the state and whether it was created now.
    """
    state = resolve(backend, spec.name)
    if state is not None:
        return state, False
    existing = all_versions(backend, spec.name)
    version = max((parse_versioned(i) or ("", 0))[1] for i in existing) + 1 if existing else 1
    create_version(backend, spec, version, alias=True)
    state = resolve(backend, spec.name)
    assert state is not None
    return state, True


def update_meta(backend: Backend, state: IndexState, xlidx_meta: Mapping[str, Any]) -> None:
    """Replace the ``xlidx`` part of the index's ``_meta``."""
    backend.put_meta(state.index, {**state.meta, "xlidx": dict(xlidx_meta)})


def status(backend: Backend, name: str) -> dict[str, Any]:
    """Version, document count, model, languages and analyzers of xlidx index ``name``."""
    state = resolve(backend, name)
    if state is None:
        raise IndexNotFound(
            f"no xlidx index named {name!r} (create it with `xlidx index create {name}`)"
        )
    count = backend.count(state.index)
    langs = backend.language_counts(state.index)
    x = state.xlidx_meta
    emb = x.get("embedding", {})
    return {
        "name": name,
        "index": state.index,
        "version": state.version,
        "versions": all_versions(backend, name),
        "engine": x.get("backend"),
        "documents": count,
        "languages": langs,
        "model": emb.get("model"),
        "model_source": emb.get("source"),
        "dimension": emb.get("dimension"),
        "backend": emb.get("backend"),
        "translate_to": x.get("translate_to", []),
        "translation_packages": x.get("translation_packages", []),
        "text_fields": x.get("text_fields", []),
        "vector": x.get("vector", {}),
        "mapping_version": x.get("mapping_version"),
        "xlidx_version": x.get("xlidx_version"),
        "created_at": x.get("created_at"),
        "analyzer_fallbacks": {
            lang: a
            for lang, a in (x.get("analyzer_fallbacks") or {}).items()
            if lang in set(x.get("languages", [])) | set(x.get("translate_to", [])) | set(langs)
        },
        "analyzers": language_analyzers(x, [*langs, *x.get("translate_to", [])]),
        "und_share": round(langs.get("und", 0) / count, 4) if count else 0.0,
        "calibration": calibration_summary(x),
    }


def calibration_summary(xlidx_meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The calibration without its mean vectors (pure)."""
    cal = xlidx_meta.get("calibration")
    if not isinstance(cal, Mapping):
        return None
    return {k: v for k, v in cal.items() if k != "means"}


def language_analyzers(xlidx_meta: Mapping[str, Any], langs: Sequence[str]) -> dict[str, str]:
    """The analyzer of each of ``langs``' text fields, as the index records it (pure)."""
    chosen = xlidx_meta.get("analyzers") or {}
    other = chosen.get("*", "standard")
    return {lang: str(chosen.get(lang, other)) for lang in sorted(set(langs)) if lang != "und"}


def migrate(
    backend: Backend,
    spec: IndexSpec,
    *,
    transform: Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    progress: Callable[[int], None] = lambda _n: None,
    batch_size: int = 200,
    decide: Callable[[str, str], bool] | None = None,
    prepare: Callable[[str], None] | None = None,
    writer: BulkWriter | None = None,
) -> dict[str, Any]:
    """Copy ``spec.name`` into its next version built from ``spec``, then move the alias.

    ``transform`` rewrites a batch of ``_source`` documents on the way (re-embedding for a new
    model); without it documents are copied as they are. Raises before moving the alias
    unless every document arrived. ``prepare(new)`` runs on the complete copy (calibration),
    then ``decide(old, new)`` (a gate) is asked last: when it says no, the alias stays and the
    new version is kept for inspection (``moved`` is false). A plain copy (no ``transform``)
    keeps its passages as they were stored, so it carries the old version's calibration.
    ``writer``: how the copy is written (default :func:`migration_writer`).
    """
    state = resolve(backend, spec.name)
    if state is None:
        raise IndexNotFound(f"no xlidx index named {spec.name!r} to migrate")
    versions = all_versions(backend, spec.name)
    next_version = max((parse_versioned(i) or ("", 0))[1] for i in versions) + 1
    new_index = create_version(backend, spec, next_version, alias=False)
    source_count = backend.count(state.index)

    writer = writer or migration_writer(backend, batch_size)
    failures: list[ItemFailure] = []
    try:
        for ids, sources in _batches(backend.documents(state.index), batch_size):
            docs = transform(sources) if transform else sources
            actions = [
                backend.index_action(new_index, doc_id, doc)
                for doc_id, doc in zip(ids, docs, strict=True)
            ]
            failures += writer.write_actions(actions).failed
            progress(len(sources))
    except BackendError as exc:
        raise BackendError(
            f"migrating {state.index} to {new_index} failed: {exc}", status=exc.status
        ) from exc
    backend.refresh(new_index)
    new_count = backend.count(new_index)
    if failures or new_count != source_count:
        raise MappingError(
            f"migration incomplete: {state.index} has {source_count} documents, {new_index} has "
            f"{new_count} ({len(failures)} failed); the alias still points at {state.index}, "
            f"and {new_index} is left for inspection"
        )
    # the version this one replaced: what `rollback` goes back to (never a half-copied one)
    new_meta = backend.get_meta(new_index)
    carried: dict[str, Any] = {"previous": state.index}
    old_meta = backend.get_meta(state.index).get("xlidx", {})  # now: it may have moved
    if transform is None and "calibration" in old_meta:
        carried["calibration"] = old_meta["calibration"]
    if "integration" in old_meta:  # `xlidx connect`: the new version enriches writes too
        carried["integration"] = old_meta["integration"]
        carry_pipelines(backend, state.index, new_index)
    backend.put_meta(new_index, {**new_meta, "xlidx": {**new_meta["xlidx"], **carried}})
    if prepare is not None:
        prepare(new_index)
    moved = decide is None or decide(state.index, new_index)
    if moved:
        move_alias(backend, spec.name, state.index, new_index)
    return {
        "name": spec.name,
        "from": state.index,
        "to": new_index,
        "documents": new_count,
        "kept_for_rollback": state.index if moved else None,
        "moved": moved,
    }


def carry_pipelines(backend: Backend, old: str, new: str) -> None:
    """Give ``new`` the default ingest and search pipelines ``old`` runs (``xlidx connect``'s),
    and the fields they write: the mark of OpenSearch's pipeline (``xlidx.pending``), the
    vectors of Elasticsearch's (``xlidx_inference``)."""
    from xlidx.backends._dsl import PENDING_MAPPING
    from xlidx.backends.elasticsearch.inference import OUTPUT_OBJECT

    idx = backend.index_settings(old).get("index", {})
    found: dict[str, Any] = {}
    if idx.get("default_pipeline"):
        found["index.default_pipeline"] = idx["default_pipeline"]
    search = (idx.get("search") or {}).get("default_pipeline")
    if search:
        found["index.search.default_pipeline"] = search
    if found:
        backend.request("PUT", f"/{new}/_settings", f"set the pipelines of {new}", body=found)
        backend.add_fields(new, PENDING_MAPPING)
        got = backend.request("GET", f"/{old}/_mapping", f"read the mapping of {old}")
        props = got.get(old, {}).get("mappings", {}).get("properties", {})
        if OUTPUT_OBJECT in props:
            backend.add_fields(new, {OUTPUT_OBJECT: props[OUTPUT_OBJECT]})


def migration_writer(backend: Backend, batch_size: int = 200) -> BulkWriter:
    """The writer of a migration's copy: one request per batch; documents refused with 429
    retried 5 times by the bulk helper (1 s to 30 s apart), a request that fails as a whole
    with a transient error 5 times."""
    return BulkWriter(
        backend,
        max_docs=batch_size,
        concurrency=1,
        patience=Patience(attempts=5, initial=1.0, max_wait=30.0),
        item_retries=5,
    )


def _batches(hits: Iterator[RawHit], size: int) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """``(ids, sources)`` of ``size`` documents at a time."""
    ids: list[str] = []
    sources: list[dict[str, Any]] = []
    for hit in hits:
        ids.append(hit.id)
        sources.append(hit.source)
        if len(ids) >= size:
            yield ids, sources
            ids, sources = [], []
    if ids:
        yield ids, sources


def move_alias(backend: Backend, alias: str, old: str, new: str) -> None:
    """Point ``alias`` from ``old`` to ``new`` in one atomic call."""
    backend.update_aliases(
        [
            {"remove": {"index": old, "alias": alias}},
            {"add": {"index": new, "alias": alias, "is_write_index": True}},
        ]
    )


def _require(backend: Backend, name: str, verb: str) -> IndexState:
    state = resolve(backend, name)
    if state is None:
        raise IndexNotFound(f"no xlidx index named {name!r} to {verb}")
    return state


def managed_versions(backend: Backend, name: str) -> list[str]:
    """``NAME-v<N>`` indices that xlidx created (their mapping has xlidx ``_meta``)."""
    return [i for i in all_versions(backend, name) if "xlidx" in backend.get_meta(i)]


def rollback(backend: Backend, name: str) -> dict[str, Any]:
    """Point ``name`` back at the version the current one replaced (recorded by ``migrate``;
    for versions migrated before that was recorded, the newest older version)."""
    state = _require(backend, name, "roll back")
    versions = managed_versions(backend, name)
    previous = state.xlidx_meta.get("previous")
    if previous:
        target = previous if previous in versions else None
    else:
        older = [i for i in versions if (parse_versioned(i) or ("", 0))[1] < state.version]
        target = older[-1] if older else None
    if target is None:
        raise MappingError(
            f"{name} has no version older than {state.index} to roll back to "
            "(`xlidx index prune` may have deleted it)"
        )
    move_alias(backend, name, state.index, target)
    return {"name": name, "from": state.index, "to": target}


def prune(backend: Backend, name: str, keep: int) -> dict[str, Any]:
    """Delete old versions, keeping the current one and the ``keep - 1`` newest others."""
    if keep < 1:
        raise ConfigError(
            f"--keep must be 1 or more (the current version is always kept), got {keep}"
        )
    state = _require(backend, name, "prune")
    others = [i for i in managed_versions(backend, name) if i != state.index]
    doomed = others[: max(0, len(others) - (keep - 1))]
    backend.delete_indices(doomed)
    return {
        "name": name,
        "current": state.index,
        "deleted": doomed,
        "kept": [i for i in [*others, state.index] if i not in doomed],
    }


def delete(backend: Backend, name: str) -> dict[str, Any]:
    """Remove the alias ``name`` and every ``name-v<N>`` index xlidx created."""
    validate_index_name(name)
    versions = managed_versions(backend, name)
    pointed = list(backend.alias_targets(name))
    if not versions and not pointed:
        if backend.index_exists(name):
            raise MappingError(f"{name!r} is a plain index, not an xlidx alias: not deleting it")
        raise IndexNotFound(f"no xlidx index named {name!r} to delete")
    foreign = [i for i in pointed if i not in versions]
    if foreign:
        raise MappingError(
            f"alias {name!r} also points at {', '.join(foreign)}, which xlidx did not create: "
            "not deleting"
        )
    backend.delete_indices(versions)  # deleting an index removes its aliases with it
    return {"name": name, "deleted": versions}
