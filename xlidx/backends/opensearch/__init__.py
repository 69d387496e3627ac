"""The OpenSearch backend (opensearch-py): client, errors, mapping and query renderers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from xlidx.backends.base import Backend, BulkItem, Capabilities
from xlidx.backends.opensearch import mapping, query
from xlidx.backends.opensearch.client import call, make_client, translate_error
from xlidx.config import ConnectionSettings
from xlidx.errors import BackendError

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from xlidx.indices.spec import IndexSpec
    from xlidx.plans import QueryPlan

NEURAL_SEARCH = "opensearch-neural-search"
KNN_PLUGIN = "opensearch-knn"


class OpenSearchBackend(Backend):
    engine = "opensearch"

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._client: OpenSearch | None = None
        self._pipelines: set[str] = set()

    @property
    def client(self) -> OpenSearch:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    def _call(self, action: str, fn: Any) -> Any:
        return call(self.settings, action, fn)

    # -- cluster -------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        info = self._call("read the cluster version", self.client.info)
        plugins = self._call("list plugins", lambda: self.client.cat.plugins(format="json"))
        health = self._call("read cluster health", self.client.cluster.health)
        return {
            "url": self.settings.display_urls,
            "backend": self.engine,
            "distribution": info.get("version", {}).get("distribution", "opensearch"),
            "version": info.get("version", {}).get("number"),
            "cluster_name": info.get("cluster_name"),
            "health": health.get("status"),
            "nodes": health.get("number_of_nodes"),
            "plugins": sorted({p["component"] for p in plugins}),
        }

    def detect_capabilities(self) -> Capabilities:
        info = self._call("read the cluster version", self.client.info)
        plugins = self._call("list plugins", lambda: self.client.cat.plugins(format="json"))
        names = tuple(sorted({p["component"] for p in plugins}))
        version = str(info.get("version", {}).get("number", ""))
        return Capabilities(
            engine=self.engine,
            version=version,
            distribution=str(info.get("version", {}).get("distribution", "opensearch")),
            # neural-search's normalization processor (min-max) and, since 2.19, its
            # score-ranker processor (RRF)
            server_fusion=frozenset({"minmax", "rrf"}) if NEURAL_SEARCH in names else frozenset(),
            vector_index_types=("hnsw",),
            vector_engines=("lucene", "faiss", "nmslib") if KNN_PLUGIN in names else (),
            nested_knn=KNN_PLUGIN in names,
            plugins=names,
        )

    def has_analyzer(self, name: str) -> bool:
        try:
            self._call(
                f"check analyzer {name}",
                lambda: self.client.indices.analyze(body={"analyzer": name, "text": "x"}),
            )
        except BackendError as exc:
            if exc.status == 400:
                return False
            raise
        return True

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

    def create_index(self, index: str, body: Mapping[str, Any]) -> None:
        self._call(
            f"create index {index}", lambda: self.client.indices.create(index=index, body=body)
        )

    def delete_indices(self, indices: Sequence[str]) -> None:
        if indices:
            names = ",".join(indices)
            self._call(f"delete {names}", lambda: self.client.indices.delete(index=names))

    def get_meta(self, index: str) -> dict[str, Any]:
        m = self._call(
            f"read the mapping of {index}", lambda: self.client.indices.get_mapping(index=index)
        )
        meta: dict[str, Any] = m[index]["mappings"].get("_meta", {})
        return meta

    def put_meta(self, index: str, meta: Mapping[str, Any]) -> None:
        self._call(
            f"update the _meta of {index}",
            lambda: self.client.indices.put_mapping(index=index, body={"_meta": dict(meta)}),
        )

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self._call(
            "update aliases",
            lambda: self.client.indices.update_aliases(body={"actions": list(actions)}),
        )

    def refresh(self, index: str) -> None:
        self._call(f"refresh {index}", lambda: self.client.indices.refresh(index=index))

    # -- documents -----------------------------------------------------------------------------
    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": dict(query)} if query is not None else None
        res = self._call(f"count {index}", lambda: self.client.count(index=index, body=body))
        return int(res["count"])

    def mget(
        self,
        index: str,
        ids: Sequence[str],
        *,
        includes: Sequence[str] | None = None,
        excludes: Sequence[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        params: dict[str, str] = {}
        if includes:
            params["_source_includes"] = ",".join(includes)
        if excludes:
            params["_source_excludes"] = ",".join(excludes)
        res = self._call(
            "look up documents",
            lambda: self.client.mget(index=index, body={"ids": list(ids)}, params=params or None),
        )
        return {d["_id"]: d.get("_source") or {} for d in res.get("docs", []) if d.get("found")}

    def search(self, index: str, body: Mapping[str, Any], action: str) -> dict[str, Any]:
        res: dict[str, Any] = self._call(
            action, lambda: self.client.search(index=index, body=dict(body))
        )
        return res

    def msearch(
        self, index: str, bodies: Sequence[Mapping[str, Any]], action: str
    ) -> list[dict[str, Any]]:
        lines: list[Mapping[str, Any]] = []
        for b in bodies:
            lines.extend([{"index": index}, b])
        res = self._call(action, lambda: self.client.msearch(body=lines))
        responses: list[dict[str, Any]] = res["responses"]
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
        self, index: str, query: Mapping[str, Any] | None = None, *, size: int = 500
    ) -> Iterator[dict[str, Any]]:
        from opensearchpy import helpers

        body = {"query": dict(query) if query is not None else {"match_all": {}}}
        hits = helpers.scan(self.client, index=index, size=size, scroll="10m", query=body)
        try:
            yield from hits
        except Exception as exc:
            raise translate_error(exc, self.settings, f"read {index}") from exc

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
        from opensearchpy import helpers

        try:
            yield from helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=chunk_size,
                max_chunk_bytes=max_chunk_bytes,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=max_retries,
                # opensearch-py sleeps whole seconds between 429 retries
                initial_backoff=max(1, round(initial_backoff)),
                max_backoff=max(1, round(max_backoff)),
            )
        except BackendError:
            raise
        except Exception as exc:
            raise translate_error(exc, self.settings, "write documents") from exc

    # -- rendering -----------------------------------------------------------------------------
    def index_body(
        self,
        spec: IndexSpec,
        *,
        xlidx_version: str,
        now: datetime | None = None,
        analyzers: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        return mapping.index_body(spec, xlidx_version=xlidx_version, now=now, analyzers=analyzers)

    def bm25_body(
        self,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> dict[str, Any]:
        return query.bm25_body(plan, size=size, offset=offset, lean=lean)

    def knn_body(
        self,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> dict[str, Any]:
        return query.knn_body(plan, size=size, offset=offset, lean=lean)

    def hybrid_search(
        self, index: str, plan: QueryPlan, weights: tuple[float, float]
    ) -> dict[str, Any]:
        name = query.pipeline_name(plan.fusion, weights, plan.rank_constant)
        if name not in self._pipelines:
            body = query.pipeline_body(plan.fusion, weights, plan.rank_constant)
            self._call(
                f"create search pipeline {name}",
                lambda: self.client.transport.perform_request(
                    "PUT", f"/_search/pipeline/{name}", body=body
                ),
            )
            self._pipelines.add(name)
        res: dict[str, Any] = self._call(
            "run the hybrid query",
            lambda: self.client.search(
                index=index,
                body=query.hybrid_body(plan, lean=True),
                params={"search_pipeline": name},
            ),
        )
        return res
