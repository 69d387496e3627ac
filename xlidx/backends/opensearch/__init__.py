"""The OpenSearch backend (opensearch-py): client, errors, mapping and query renderers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from xlidx.backends._client import ClientBackend
from xlidx.backends.base import Capabilities
from xlidx.backends.opensearch import mapping, query
from xlidx.backends.opensearch.client import call, make_client, translate_error
from xlidx.config import ConnectionSettings
from xlidx.errors import BackendError

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from xlidx.plans import QueryPlan

NEURAL_SEARCH = "opensearch-neural-search"
KNN_PLUGIN = "opensearch-knn"


class OpenSearchBackend(ClientBackend):
    engine = "opensearch"
    mapping = mapping
    query = query

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

    def _translate(self, exc: Exception, action: str) -> BackendError:
        return translate_error(exc, self.settings, action)

    def _helpers(self) -> ModuleType:
        from opensearchpy import helpers

        return helpers

    def _bulk_backoff(self, seconds: float) -> float:
        return max(1, round(seconds))  # opensearch-py sleeps whole seconds between 429 retries

    def _msearch(self, lines: list[Mapping[str, Any]], action: str) -> dict[str, Any]:
        res: dict[str, Any] = self._call(action, lambda: self.client.msearch(body=lines))
        return res

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
    def create_index(self, index: str, body: Mapping[str, Any]) -> None:
        self._call(
            f"create index {index}", lambda: self.client.indices.create(index=index, body=body)
        )

    def put_meta(self, index: str, meta: Mapping[str, Any]) -> None:
        self._call(
            f"update the _meta of {index}",
            lambda: self.client.indices.put_mapping(index=index, body={"_meta": dict(meta)}),
        )

    def add_fields(self, index: str, properties: Mapping[str, Any]) -> None:
        self._call(
            f"add fields to the mapping of {index}",
            lambda: self.client.indices.put_mapping(
                index=index, body={"properties": dict(properties)}
            ),
        )

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self._call(
            "update aliases",
            lambda: self.client.indices.update_aliases(body={"actions": list(actions)}),
        )

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

    # -- rendering -----------------------------------------------------------------------------
    def _hybrid_response(
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
