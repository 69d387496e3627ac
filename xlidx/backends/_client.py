"""What the two client libraries do alike: the operations whose calls are the same in
opensearch-py and elasticsearch-py, written once over a backend's ``client``.

A backend supplies its client, its ``call`` (error translation), its helpers module (scan,
streaming bulk) and its renderer modules; it overrides only what its library spells
differently.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from xlidx.backends import _dsl, changes
from xlidx.backends.base import Backend, BulkItem
from xlidx.backends.changes import Change, ShardHead
from xlidx.backends.hits import RawHit, buckets_of, hits_of, raw_hit
from xlidx.errors import BackendError, XlidxError

if TYPE_CHECKING:
    from xlidx.pipeline.calibration import Calibration
    from xlidx.plans import QueryPlan
    from xlidx.spec import IndexSpec


class ClientBackend(Backend):
    mapping: ModuleType  # index_body(spec, *, xlidx_version, now, analyzers)
    query: ModuleType  # bm25_body(plan, …), knn_body(plan, …)

    @property
    @abstractmethod
    def client(self) -> Any: ...

    @abstractmethod
    def _call(self, action: str, fn: Any) -> Any:
        """Run one client call; the client library's errors become ``BackendError``s."""

    @abstractmethod
    def _helpers(self) -> ModuleType:
        """The client library's ``helpers`` module (``scan``, ``streaming_bulk``)."""

    @abstractmethod
    def _translate(self, exc: Exception, action: str) -> BackendError: ...

    # -- indices and aliases -------------------------------------------------------------------
    def alias_targets(self, alias: str) -> dict[str, dict[str, Any]]:
        c = self.client
        if not self._call(f"look up alias {alias}", lambda: c.indices.exists_alias(name=alias)):
            return {}
        found = self._call(f"read alias {alias}", lambda: c.indices.get_alias(name=alias))
        return {
            index: dict(v.get("aliases", {}).get(alias, {}))
            for index, v in found.items()
            if alias in v.get("aliases", {})
        }

    def index_exists(self, index: str) -> bool:
        return bool(
            self._call(f"check index {index}", lambda: self.client.indices.exists(index=index))
        )

    def list_indices(self, pattern: str) -> list[str]:
        found = self._call(
            f"list indices {pattern}",
            lambda: self.client.indices.get(
                index=pattern, ignore_unavailable=True, allow_no_indices=True
            ),
        )
        return sorted(found or {})

    def cat_indices(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call(
            "list indices",
            lambda: self.client.cat.indices(format="json", h="index,health,docs.count,store.size"),
        )
        return rows

    def cat_aliases(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call(
            "list aliases", lambda: self.client.cat.aliases(format="json")
        )
        return rows

    def delete_indices(self, indices: Sequence[str]) -> None:
        if indices:  # named one by one: Elasticsearch refuses wildcards in deletes
            names = ",".join(indices)
            self._call(f"delete {names}", lambda: self.client.indices.delete(index=names))

    def get_meta(self, index: str) -> dict[str, Any]:
        m = self._call(
            f"read the mapping of {index}", lambda: self.client.indices.get_mapping(index=index)
        )
        meta: dict[str, Any] = m[index]["mappings"].get("_meta", {})
        return meta

    def index_settings(self, index: str) -> dict[str, Any]:
        found = self._call(
            f"read the settings of {index}", lambda: self.client.indices.get_settings(index=index)
        )
        settings: dict[str, Any] = dict(found[index]["settings"])
        return settings

    def refresh(self, index: str) -> None:
        self._call(f"refresh {index}", lambda: self.client.indices.refresh(index=index))

    def request(
        self,
        method: str,
        path: str,
        action: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One REST call the client libraries have no method for (a plugin's API: ml-commons'
        connectors and models, ingest and search pipelines, the inference API); its reply."""
        import warnings

        with warnings.catch_warnings():
            # ml-commons' replies may carry a "this request accesses system indices" warning
            # header, which the client library turns into a Python warning: not the user's
            warnings.simplefilter("ignore")
            return self._call(
                action,
                lambda: self.client.transport.perform_request(
                    method, path, body=dict(body) if body is not None else None,
                    params=dict(params) if params else None,
                ),
            )  # fmt: skip

    # -- documents -----------------------------------------------------------------------------
    def search(self, index: str, body: Mapping[str, Any], action: str) -> dict[str, Any]:
        res: dict[str, Any] = self._call(
            action, lambda: self.client.search(index=index, body=dict(body))
        )
        return res

    @abstractmethod
    def _msearch(self, lines: list[Mapping[str, Any]], action: str) -> dict[str, Any]: ...

    def msearch(
        self, index: str, bodies: Sequence[Mapping[str, Any]], action: str
    ) -> list[dict[str, Any]]:
        lines: list[Mapping[str, Any]] = []
        for b in bodies:
            lines.extend([{"index": index}, b])
        responses: list[dict[str, Any]] = self._msearch(lines, action)["responses"]
        for r in responses:
            if "error" in r:
                err = r["error"]
                reason = err.get("reason", err) if isinstance(err, dict) else err
                raise BackendError(
                    f"{self.settings.display_urls} failed to {action}: {reason}",
                    status=r.get("status"),
                    details=err,
                )
        return responses

    def scan(
        self,
        index: str,
        query: Mapping[str, Any] | None = None,
        *,
        size: int = 500,
        source: Sequence[str] | None = None,
        versions: bool = False,
    ) -> Iterator[dict[str, Any]]:
        body: dict[str, Any] = {"query": dict(query) if query is not None else {"match_all": {}}}
        if source is not None:
            body["_source"] = list(source)
        if versions:
            body["seq_no_primary_term"] = True
        hits = self._helpers().scan(self.client, index=index, size=size, scroll="10m", query=body)
        try:
            yield from hits
        except Exception as exc:
            raise self._translate(exc, f"read {index}") from exc

    def _bulk_backoff(self, seconds: float) -> float:
        """How the helper takes its backoff (opensearch-py wants whole seconds)."""
        return seconds

    def bulk(
        self,
        actions: Iterable[Mapping[str, Any]],
        *,
        chunk_size: int,
        max_chunk_bytes: int,
        max_retries: int,
        initial_backoff: float,
        max_backoff: float,
    ) -> Iterator[BulkItem]:
        try:
            yield from self._helpers().streaming_bulk(
                self.client,
                (dict(a) for a in actions),
                chunk_size=chunk_size,
                max_chunk_bytes=max_chunk_bytes,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=max_retries,
                initial_backoff=self._bulk_backoff(initial_backoff),
                max_backoff=self._bulk_backoff(max_backoff),
                # xlidx writes whole xlidx documents: an ingest pipeline the index runs by
                # default (`xlidx connect` sets one for applications' writes) must not
                # enrich them again
                pipeline="_none",
            )
        except XlidxError:
            raise  # a BackendError already, or an error of whatever made the actions
        except Exception as exc:
            raise self._translate(exc, "write documents") from exc

    # -- the domain ----------------------------------------------------------------------------
    def documents(
        self, index: str, *, size: int = 500, source: Sequence[str] | None = None
    ) -> Iterator[RawHit]:
        return (raw_hit(h) for h in self.scan(index, size=size, source=source))

    def pending_documents(self, index: str, *, size: int = 200) -> Iterator[RawHit]:
        return (raw_hit(h) for h in self.scan(index, _dsl.PENDING, size=size))

    def language_counts(self, index: str, *, any_text: bool = False) -> dict[str, int]:
        body = _dsl.language_counts_body(_dsl.LANGS if any_text else _dsl.LANG)
        return buckets_of(self.search(index, body, "count documents per language"), "langs")

    def count_text_languages(self, index: str, langs: Iterable[str]) -> int:
        return self.count(index, _dsl.text_languages_query(langs))

    def sample_language(
        self, index: str, lang: str, size: int, *, fields: Sequence[str] = (), seed: int = 0
    ) -> list[RawHit]:
        body = _dsl.sample_body(lang, size, fields, seed)
        return hits_of(self.search(index, body, f"sample the {lang} documents"))

    def count_stale(self, index: str, cal: Calibration | None) -> int:
        return self.count(index, _dsl.stale_query(cal))

    def stale_documents(
        self, index: str, cal: Calibration | None, *, size: int = 200
    ) -> Iterator[RawHit]:
        hits = self.scan(
            index, _dsl.stale_query(cal), size=size, source=[_dsl.PASSAGES], versions=True
        )
        return (raw_hit(h) for h in hits)

    def means_carried(self, index: str, means: Iterable[str]) -> set[str]:
        return {m for m in sorted(set(means)) if self.count(index, _dsl.carrying_query(m))}

    # -- the domain: following an index ---------------------------------------------------------
    def shard_heads(self, index: str) -> list[ShardHead]:
        res = self.request(
            "GET", f"/{_path(index)}/_stats/docs", f"read the shard positions of {index}",
            params={"level": "shards"},
        )  # fmt: skip
        return changes.shard_heads_of(res)

    def changes(self, index: str, shard: int, *, after: int, upto: int, size: int) -> list[Change]:
        res = self.request(
            "POST", f"/{_path(index)}/_search", f"read the changes of {index}",
            body=changes.changes_body(after, upto, size), params={"preference": f"_shards:{shard}"},
        )  # fmt: skip
        return changes.hits_with_sort(res)

    def field_kind(self, index: str, field: str) -> str | None:
        res = self.request(
            "GET", f"/{_path(index)}/_mapping/field/{_path(field)}",
            f"read the mapping of {field} in {index}",
        )  # fmt: skip
        return changes.field_kind_of(res, field)

    def changed_since(
        self, index: str, field: str, kind: str, *, after: Any, size: int
    ) -> list[Change]:
        body = changes.since_body(field, kind, after, size)
        return changes.hits_with_sort(self.search(index, body, f"read the changes of {index}"))

    def count_since(self, index: str, field: str, kind: str, after: Any) -> int:
        return self.count(index, changes.since_query(field, kind, after, inclusive=False))

    def document_ids(
        self, index: str, *, id_field: str | None = None, size: int = 5000
    ) -> Iterator[str]:
        hits = self._helpers().scan(
            self.client, index=index, size=size, scroll="5m", query=changes.ids_body(id_field)
        )
        try:
            for h in hits:
                yield changes.record_id(raw_hit(h), id_field)
        except XlidxError:
            raise
        except Exception as exc:
            raise self._translate(exc, f"read the ids of {index}") from exc

    def ensure_state_index(self, index: str) -> None:
        body = changes.STATE_INDEX_BODY
        try:
            self.request("PUT", f"/{_path(index)}", f"create index {index}", body=body)
        except BackendError as exc:
            if "resource_already_exists_exception" not in str(exc.details or exc):
                raise

    def read_state(self, index: str, doc_id: str) -> RawHit | None:
        try:
            res = self.request(
                "GET", f"/{_path(index)}/_doc/{_path(doc_id)}", f"read {doc_id} in {index}"
            )
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise
        return raw_hit(res) if res.get("found") else None

    def write_state(
        self,
        index: str,
        doc_id: str,
        source: Mapping[str, Any],
        *,
        create: bool = False,
        version: RawHit | None = None,
    ) -> RawHit:
        kind = "_create" if create else "_doc"
        res = self.request(
            "PUT", f"/{_path(index)}/{kind}/{_path(doc_id)}", f"write {doc_id} in {index}",
            body=dict(source), params=_if_version(version),
        )  # fmt: skip
        return RawHit(
            index=index, id=doc_id, source=dict(source),
            seq_no=int(res["_seq_no"]), primary_term=int(res["_primary_term"]),
        )  # fmt: skip

    def delete_state(self, index: str, doc_id: str, *, version: RawHit | None = None) -> bool:
        try:
            self.request(
                "DELETE", f"/{_path(index)}/_doc/{_path(doc_id)}", f"delete {doc_id} in {index}",
                params=_if_version(version),
            )  # fmt: skip
        except BackendError as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def search_bm25(
        self,
        index: str,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> list[RawHit]:
        body = self.bm25_body(plan, size=size, offset=offset, lean=lean)
        return hits_of(self.search(index, body, "run the BM25 query"))

    def search_knn(
        self,
        index: str,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> list[RawHit]:
        body = self.knn_body(plan, size=size, offset=offset, lean=lean)
        return hits_of(self.search(index, body, "run the kNN query"))

    def search_candidates(
        self, index: str, plan: QueryPlan, window: int
    ) -> tuple[list[RawHit], list[RawHit]]:
        bm25, knn = self.msearch(
            index,
            [
                self.bm25_body(plan, size=window, offset=0, lean=True),
                self.knn_body(plan, size=window, offset=0, lean=True),
            ],
            "run the BM25 and kNN queries",
        )
        return hits_of(bm25), hits_of(knn)

    def hit_sources(
        self, index: str, plan: QueryPlan, ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        src = self.source_filter(plan)
        return self.mget(index, ids, includes=src.get("includes"), excludes=src["excludes"])

    @abstractmethod
    def _hybrid_response(
        self, index: str, plan: QueryPlan, weights: tuple[float, float]
    ) -> dict[str, Any]:
        """The response of one hybrid request fused on the server."""

    def hybrid_search(
        self, index: str, plan: QueryPlan, weights: tuple[float, float]
    ) -> list[RawHit]:
        return hits_of(self._hybrid_response(index, plan, weights))

    # -- rendering -----------------------------------------------------------------------------
    def index_body(
        self,
        spec: IndexSpec,
        *,
        xlidx_version: str,
        now: datetime | None = None,
        analyzers: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = self.mapping.index_body(
            spec, xlidx_version=xlidx_version, now=now, analyzers=analyzers
        )
        return body

    def bm25_body(
        self,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = self.query.bm25_body(plan, size=size, offset=offset, lean=lean)
        return body

    def knn_body(
        self,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = self.query.knn_body(plan, size=size, offset=offset, lean=lean)
        return body


def _path(part: str) -> str:
    """A name or id as one segment of a request path."""
    from urllib.parse import quote

    return quote(part, safe=",*")


def _if_version(version: RawHit | None) -> dict[str, Any] | None:
    """The query string of a write conditional on ``version`` (None: unconditional)."""
    if version is None or version.seq_no is None or version.primary_term is None:
        return None
    return {"if_seq_no": version.seq_no, "if_primary_term": version.primary_term}
