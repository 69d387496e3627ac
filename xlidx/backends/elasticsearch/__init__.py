"""The Elasticsearch backend (elasticsearch-py 8, bodies through elasticsearch-dsl)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from xlidx.backends._client import ClientBackend
from xlidx.backends.base import Capabilities
from xlidx.backends.elasticsearch import mapping, query
from xlidx.backends.elasticsearch.client import call, make_client, translate_error
from xlidx.config import ConnectionSettings
from xlidx.errors import BackendError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from xlidx.plans import QueryPlan

PROBE_INDEX = "xlidx-capability-probe-*"


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for p in version.split("-")[0].split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


def index_types_for(version: str) -> tuple[str, ...]:
    """``dense_vector`` ``index_options`` types by version: int8 since 8.12, bbq since 8.15."""
    v = _version_tuple(version)
    types = ["hnsw"]
    if v >= (8, 12):
        types.append("int8_hnsw")
    if v >= (8, 15):
        types.append("bbq_hnsw")
    return tuple(types)


def _body(res: Any) -> Any:
    """The plain JSON of an elasticsearch-py response."""
    return getattr(res, "body", res)


class ElasticsearchBackend(ClientBackend):
    engine = "elasticsearch"
    mapping = mapping
    query = query

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._client: Elasticsearch | None = None

    @property
    def client(self) -> Elasticsearch:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    def _call(self, action: str, fn: Any) -> Any:
        return _body(call(self.settings, action, fn))

    def _translate(self, exc: Exception, action: str) -> BackendError:
        return translate_error(exc, self.settings, action)

    def _helpers(self) -> ModuleType:
        from elasticsearch import helpers

        return helpers

    def request(
        self,
        method: str,
        path: str,
        action: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        # elasticsearch-py 8 takes the query string in the path and wants the media types named
        from urllib.parse import urlencode

        target = f"{path}?{urlencode(dict(params))}" if params else path
        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        res = self._call(
            action,
            lambda: self.client.perform_request(
                method, target, headers=headers, body=dict(body) if body is not None else None
            ),
        )
        return getattr(res, "body", res)

    def _msearch(self, lines: list[Mapping[str, Any]], action: str) -> dict[str, Any]:
        res: dict[str, Any] = self._call(action, lambda: self.client.msearch(searches=lines))
        return res

    # -- cluster -------------------------------------------------------------------------------
    def _nodes(self) -> dict[str, Any]:
        # GET / answers 405 on the integ-test distribution: read versions from the nodes API
        nodes: dict[str, Any] = self._call(
            "read the cluster version", lambda: self.client.nodes.info(metric="plugins")
        )
        return nodes

    def describe(self) -> dict[str, Any]:
        nodes = self._nodes()
        health = self._call("read cluster health", self.client.cluster.health)
        first: dict[str, Any] = next(iter(nodes.get("nodes", {}).values()), {})
        plugins = {p["name"] for n in nodes.get("nodes", {}).values() for p in n.get("plugins", [])}
        return {
            "url": self.settings.display_urls,
            "backend": self.engine,
            "distribution": "elasticsearch",
            "version": first.get("version"),
            "cluster_name": nodes.get("cluster_name") or health.get("cluster_name"),
            "health": health.get("status"),
            "nodes": health.get("number_of_nodes"),
            "plugins": sorted(plugins),
        }

    def _probe_retriever(self, retriever: Mapping[str, Any]) -> bool:
        try:
            self._call(
                "probe a retriever",
                lambda: self.client.search(
                    index=PROBE_INDEX,
                    allow_no_indices=True,
                    ignore_unavailable=True,
                    size=0,
                    retriever=dict(retriever),
                ),
            )
        except BackendError as exc:
            if exc.status in (400, 403, 404):
                return False
            raise
        return True

    def detect_capabilities(self) -> Capabilities:
        nodes = self._nodes()
        first: dict[str, Any] = next(iter(nodes.get("nodes", {}).values()), {})
        version = str(first.get("version", ""))
        plugins = tuple(
            sorted(
                {p["name"] for n in nodes.get("nodes", {}).values() for p in n.get("plugins", [])}
            )
        )
        standard: dict[str, Any] = {"standard": {"query": {"match_none": {}}}}
        retrievers = set()
        if self._probe_retriever({"rrf": {"retrievers": [standard, standard]}}):
            retrievers.add("rrf")
        if self._probe_retriever(
            {
                "linear": {
                    "retrievers": [
                        {"retriever": standard, "weight": 1.0, "normalizer": "minmax"},
                        {"retriever": standard, "weight": 1.0, "normalizer": "minmax"},
                    ]
                }
            }
        ):
            retrievers.add("linear")
        fusion = set()
        if "linear" in retrievers:
            fusion.add("minmax")
        if "rrf" in retrievers:
            fusion.add("rrf")
        return Capabilities(
            engine=self.engine,
            version=version,
            distribution="elasticsearch",
            server_fusion=frozenset(fusion),
            retrievers=frozenset(retrievers),
            vector_index_types=index_types_for(version),
            vector_engines=("lucene",),
            nested_knn=_version_tuple(version) >= (8, 11),
            plugins=plugins,
        )

    def has_analyzer(self, name: str) -> bool:
        try:
            self._call(
                f"check analyzer {name}",
                lambda: self.client.indices.analyze(analyzer=name, text="x"),
            )
        except BackendError as exc:
            if exc.status == 400:
                return False
            raise
        return True

    # -- indices and aliases -------------------------------------------------------------------
    def create_index(self, index: str, body: Mapping[str, Any]) -> None:
        self._call(
            f"create index {index}",
            lambda: self.client.indices.create(
                index=index,
                settings=body.get("settings"),
                mappings=body.get("mappings"),
                aliases=body.get("aliases"),
            ),
        )

    def put_meta(self, index: str, meta: Mapping[str, Any]) -> None:
        self._call(
            f"update the _meta of {index}",
            lambda: self.client.indices.put_mapping(index=index, meta=dict(meta)),
        )

    def add_fields(self, index: str, properties: Mapping[str, Any]) -> None:
        self._call(
            f"add fields to the mapping of {index}",
            lambda: self.client.indices.put_mapping(index=index, properties=dict(properties)),
        )

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self._call(
            "update aliases",
            lambda: self.client.indices.update_aliases(actions=[dict(a) for a in actions]),
        )

    # -- documents -----------------------------------------------------------------------------
    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        q = dict(query) if query is not None else None
        res = self._call(f"count {index}", lambda: self.client.count(index=index, query=q))
        return int(res["count"])

    def mget(
        self,
        index: str,
        ids: Sequence[str],
        *,
        includes: Sequence[str] | None = None,
        excludes: Sequence[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        res = self._call(
            "look up documents",
            lambda: self.client.mget(
                index=index,
                ids=list(ids),
                source_includes=list(includes) if includes else None,
                source_excludes=list(excludes) if excludes else None,
            ),
        )
        return {d["_id"]: d.get("_source") or {} for d in res.get("docs", []) if d.get("found")}

    # -- rendering -----------------------------------------------------------------------------
    def _hybrid_response(
        self, index: str, plan: QueryPlan, weights: tuple[float, float]
    ) -> dict[str, Any]:
        return self.search(
            index, query.retriever_body(plan, weights, lean=True), "run the hybrid query"
        )
