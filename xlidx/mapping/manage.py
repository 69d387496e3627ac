"""Versioned indices behind aliases: create, inspect, and migrate (talks to the cluster).

``NAME`` is always an alias; the data lives in ``NAME-v1``, ``NAME-v2``, …. ``migrate`` builds
the next version, copies (and, for a new model, re-embeds) every document, checks the counts,
then moves the alias in one atomic ``_aliases`` call and keeps the old version for rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch, helpers

from xlidx.backends.opensearch import call
from xlidx.config import ConnectionSettings
from xlidx.errors import BackendError, MappingError
from xlidx.mapping.spec import (
    IndexSpec,
    build_index_body,
    parse_versioned,
    validate_index_name,
    versioned_name,
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


def resolve(client: OpenSearch, settings: ConnectionSettings, name: str) -> IndexState | None:
    """The state of xlidx index ``name``, or ``None`` when nothing of that name exists."""
    validate_index_name(name)
    has_alias = call(
        settings, f"look up alias {name}", lambda: client.indices.exists_alias(name=name)
    )
    aliases: dict[str, Any] = (
        call(settings, f"read alias {name}", lambda: client.indices.get_alias(name=name))
        if has_alias
        else {}
    )
    targets = [i for i in aliases if name in aliases[i].get("aliases", {})]
    if not targets:
        exists = call(settings, f"check index {name}", lambda: client.indices.exists(index=name))
        if exists:
            raise MappingError(
                f"{name!r} is a plain index, not an xlidx alias: pick another name, or migrate "
                "it with `xlidx ingest --from-index`"
            )
        return None
    if len(targets) > 1:
        writes = [i for i in targets if aliases[i]["aliases"][name].get("is_write_index")]
        if len(writes) != 1:
            raise MappingError(
                f"alias {name!r} points at several indices: {', '.join(sorted(targets))}"
            )
        targets = writes
    index = targets[0]
    parsed = parse_versioned(index)
    if parsed is None or parsed[0] != name:
        raise MappingError(f"alias {name!r} points at {index!r}, which is not {name}-v<N>")
    mapping = call(
        settings, f"read the mapping of {index}", lambda: client.indices.get_mapping(index=index)
    )
    meta = mapping[index]["mappings"].get("_meta", {})
    if "xlidx" not in meta:
        raise MappingError(f"index {index!r} has no xlidx _meta: it was not created by xlidx")
    return IndexState(alias=name, index=index, version=parsed[1], meta=meta)


def all_versions(client: OpenSearch, settings: ConnectionSettings, name: str) -> list[str]:
    found = call(
        settings,
        f"list versions of {name}",
        lambda: client.indices.get(
            index=f"{name}-v*", ignore_unavailable=True, allow_no_indices=True
        ),
    )
    versions = [(parse_versioned(i), i) for i in found or {}]
    return [i for v, i in sorted((v, i) for v, i in versions if v and v[0] == name)]


def create_version(
    client: OpenSearch, settings: ConnectionSettings, spec: IndexSpec, version: int, *, alias: bool
) -> str:
    index = versioned_name(spec.name, version)
    body = build_index_body(spec, xlidx_version=_xlidx_version())
    if alias:
        body["aliases"] = {spec.name: {"is_write_index": True}}
    call(settings, f"create index {index}", lambda: client.indices.create(index=index, body=body))
    return index


def ensure(
    client: OpenSearch, settings: ConnectionSettings, spec: IndexSpec
) -> tuple[IndexState, bool]:
    """The index for ``spec``: the existing one (unchanged), or a new ``NAME-v1``. Idempotent.

    Returns the state and whether it was created now.
    """
    state = resolve(client, settings, spec.name)
    if state is not None:
        return state, False
    existing = all_versions(client, settings, spec.name)
    version = max((parse_versioned(i) or ("", 0))[1] for i in existing) + 1 if existing else 1
    create_version(client, settings, spec, version, alias=True)
    state = resolve(client, settings, spec.name)
    assert state is not None
    return state, True


def update_meta(
    client: OpenSearch,
    settings: ConnectionSettings,
    state: IndexState,
    xlidx_meta: Mapping[str, Any],
) -> None:
    """Replace the ``xlidx`` part of the index's ``_meta``."""
    meta = {**state.meta, "xlidx": dict(xlidx_meta)}
    call(
        settings,
        f"update the _meta of {state.index}",
        lambda: client.indices.put_mapping(index=state.index, body={"_meta": meta}),
    )


def status(client: OpenSearch, settings: ConnectionSettings, name: str) -> dict[str, Any]:
    """Version, document count, model and languages of xlidx index ``name``."""
    state = resolve(client, settings, name)
    if state is None:
        raise MappingError(
            f"no xlidx index named {name!r} (create it with `xlidx index create {name}`)"
        )
    count = call(settings, f"count {state.index}", lambda: client.count(index=state.index))["count"]
    aggs = call(
        settings,
        f"aggregate languages of {state.index}",
        lambda: client.search(
            index=state.index,
            body={"size": 0, "aggs": {"lang": {"terms": {"field": "xlidx.lang", "size": 100}}}},
        ),
    )
    langs = {b["key"]: b["doc_count"] for b in aggs["aggregations"]["lang"]["buckets"]}
    x = state.xlidx_meta
    emb = x.get("embedding", {})
    return {
        "name": name,
        "index": state.index,
        "version": state.version,
        "versions": all_versions(client, settings, name),
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
    }


def _scan(client: OpenSearch, index: str) -> Iterator[dict[str, Any]]:
    yield from helpers.scan(
        client, index=index, size=500, scroll="10m", query={"query": {"match_all": {}}}
    )


def migrate(
    client: OpenSearch,
    settings: ConnectionSettings,
    spec: IndexSpec,
    *,
    transform: Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    progress: Callable[[int], None] = lambda _n: None,
    batch_size: int = 200,
) -> dict[str, Any]:
    """Copy ``spec.name`` into its next version built from ``spec``, then move the alias.

    ``transform`` rewrites a batch of ``_source`` documents on the way (re-embedding for a new
    model); without it documents are copied as they are. Raises before moving the alias
    unless every document arrived.
    """
    state = resolve(client, settings, spec.name)
    if state is None:
        raise MappingError(f"no xlidx index named {spec.name!r} to migrate")
    versions = all_versions(client, settings, spec.name)
    next_version = max((parse_versioned(i) or ("", 0))[1] for i in versions) + 1
    new_index = create_version(client, settings, spec, next_version, alias=False)
    source_count = call(settings, f"count {state.index}", lambda: client.count(index=state.index))[
        "count"
    ]

    def actions() -> Iterator[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        ids: list[str] = []

        def flush() -> Iterator[dict[str, Any]]:
            docs = transform(batch) if transform else batch
            for doc_id, doc in zip(ids, docs, strict=True):
                yield {"_op_type": "index", "_index": new_index, "_id": doc_id, "_source": doc}
            progress(len(batch))

        for hit in _scan(client, state.index):
            batch.append(hit["_source"])
            ids.append(hit["_id"])
            if len(batch) >= batch_size:
                yield from flush()
                batch, ids = [], []
        if batch:
            yield from flush()

    failures: list[Any] = []
    try:
        for ok, item in helpers.streaming_bulk(
            client, actions(), chunk_size=batch_size, raise_on_error=False, max_retries=5
        ):
            if not ok:
                failures.append(item)
    except Exception as exc:
        raise BackendError(f"migrating {state.index} to {new_index} failed: {exc}") from exc
    call(settings, f"refresh {new_index}", lambda: client.indices.refresh(index=new_index))
    new_count = call(settings, f"count {new_index}", lambda: client.count(index=new_index))["count"]
    if failures or new_count != source_count:
        raise MappingError(
            f"migration incomplete: {state.index} has {source_count} documents, {new_index} has "
            f"{new_count} ({len(failures)} failed); the alias still points at {state.index}, "
            f"and {new_index} is left for inspection"
        )
    call(
        settings,
        f"move alias {spec.name} to {new_index}",
        lambda: client.indices.update_aliases(
            body={
                "actions": [
                    {"remove": {"index": state.index, "alias": spec.name}},
                    {"add": {"index": new_index, "alias": spec.name, "is_write_index": True}},
                ]
            }
        ),
    )
    return {
        "name": spec.name,
        "from": state.index,
        "to": new_index,
        "documents": new_count,
        "kept_for_rollback": state.index,
    }
