"""The one seam between xlidx and a search engine: the :class:`Backend` interface.

Everything above ``backends/`` (ingest stages, the index lifecycle, searching, eval, the
workers and the CLI) receives a ``Backend`` and never imports a client library. A backend owns
its client (created on first use: constructors do no I/O) and the connection settings,
translates every client exception into the :class:`~xlidx.errors.BackendError` tree, renders
index specs and query plans into request bodies, and says what its cluster can do
(:class:`Capabilities`, detected from the cluster on first use, never assumed).

A third engine is one more package under ``backends/`` implementing this class, plus its
golden body tests.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from xlidx.backends import _dsl
from xlidx.config import ConnectionSettings
from xlidx.errors import AuthenticationFailed

log = logging.getLogger("xlidx.backends")

if TYPE_CHECKING:
    from xlidx.indices.spec import IndexSpec
    from xlidx.plans import QueryPlan

BulkItem = tuple[bool, dict[str, Any]]


@dataclass(frozen=True)
class Capabilities:
    """What a cluster can do, as detected.

    * ``server_fusion``: fusion methods (``minmax``, ``rrf``) the server can apply to a hybrid
      request itself (OpenSearch: neural-search's search pipelines; Elasticsearch: the
      ``linear`` and ``rrf`` retrievers).
    * ``retrievers``: Elasticsearch retrievers that answered a probe (``rrf``, ``linear``).
    * ``vector_index_types``: what ``--vector-index`` accepts here (Elasticsearch
      ``index_options`` types; OpenSearch: ``hnsw``).
    * ``vector_engines``: OpenSearch k-NN engines (``lucene``, ``faiss``, ``nmslib``);
      Elasticsearch: ``lucene``.
    """

    engine: str
    version: str
    distribution: str
    server_fusion: frozenset[str] = frozenset()
    retrievers: frozenset[str] = frozenset()
    vector_index_types: tuple[str, ...] = ("hnsw",)
    vector_engines: tuple[str, ...] = ("lucene",)
    nested_knn: bool = True
    plugins: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "version": self.version,
            "distribution": self.distribution,
            "server_fusion": sorted(self.server_fusion),
            "retrievers": sorted(self.retrievers),
            "vector_index_types": list(self.vector_index_types),
            "vector_engines": list(self.vector_engines),
            "nested_knn": self.nested_knn,
        }


class Backend(ABC):
    """A search cluster xlidx talks to. Subclasses implement each operation once."""

    engine: str = ""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._capabilities: Capabilities | None = None
        self._analyzers: dict[str, bool] = {}

    # -- cluster -------------------------------------------------------------------------------
    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """URL, distribution, version, cluster name, health, node count and plugins."""

    @abstractmethod
    def detect_capabilities(self) -> Capabilities:
        """Ask the cluster what it can do (I/O)."""

    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = self.detect_capabilities()
        return self._capabilities

    @abstractmethod
    def has_analyzer(self, name: str) -> bool:
        """Whether the cluster knows the built-in analyzer ``name`` (asked once, then cached)."""

    def available_analyzers(self, names: Iterable[str]) -> frozenset[str] | None:
        """Which of ``names`` the cluster has; ``None`` when it will not say (a user without
        the right to call ``_analyze``): then the built-in analyzers are assumed."""
        out = set()
        for name in sorted(set(names)):
            if name not in self._analyzers:
                try:
                    self._analyzers[name] = self.has_analyzer(name)
                except AuthenticationFailed:
                    log.warning("not allowed to ask which analyzers exist; assuming built-ins")
                    return None
            if self._analyzers[name]:
                out.add(name)
        return frozenset(out)

    # -- indices and aliases -------------------------------------------------------------------
    @abstractmethod
    def alias_targets(self, alias: str) -> dict[str, dict[str, Any]]:
        """``{index: alias properties}`` of the indices ``alias`` points at ({} if none)."""

    @abstractmethod
    def index_exists(self, index: str) -> bool: ...

    @abstractmethod
    def list_indices(self, pattern: str) -> list[str]:
        """Names of the indices matching ``pattern`` (none is not an error)."""

    @abstractmethod
    def cat_indices(self) -> list[dict[str, Any]]:
        """Rows of ``index``, ``health``, ``docs.count``, ``store.size`` for every index."""

    @abstractmethod
    def cat_aliases(self) -> list[dict[str, Any]]:
        """Rows of ``alias`` and ``index``."""

    @abstractmethod
    def create_index(self, index: str, body: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def delete_indices(self, indices: Sequence[str]) -> None: ...

    @abstractmethod
    def get_meta(self, index: str) -> dict[str, Any]:
        """The ``_meta`` of ``index``'s mapping."""

    def index_settings(self, index: str) -> dict[str, Any]:
        """The settings of ``index`` as ``GET <index>/_settings`` gives them (``{}``: unknown)."""
        return {}

    @abstractmethod
    def put_meta(self, index: str, meta: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def add_fields(self, index: str, properties: Mapping[str, Any]) -> None:
        """Add fields to an index's mapping (``properties`` as in a mapping body)."""

    @abstractmethod
    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """Apply alias actions in one atomic call."""

    @abstractmethod
    def refresh(self, index: str) -> None: ...

    # -- documents -----------------------------------------------------------------------------
    @abstractmethod
    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int: ...

    @abstractmethod
    def mget(
        self,
        index: str,
        ids: Sequence[str],
        *,
        includes: Sequence[str] | None = None,
        excludes: Sequence[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """``{id: _source}`` of the documents that exist."""

    @abstractmethod
    def search(self, index: str, body: Mapping[str, Any], action: str) -> dict[str, Any]:
        """Run one search body; ``action`` completes 'while trying to …' in errors."""

    @abstractmethod
    def msearch(
        self, index: str, bodies: Sequence[Mapping[str, Any]], action: str
    ) -> list[dict[str, Any]]:
        """Run several search bodies in one request; a failed one raises."""

    @abstractmethod
    def scan(
        self,
        index: str,
        query: Mapping[str, Any] | None = None,
        *,
        size: int = 500,
        source: Sequence[str] | None = None,
        versions: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every hit of ``query`` (default: all documents), read with scroll; ``source``:
        the fields of ``_source`` to read (default all); ``versions``: hits carry
        ``_seq_no`` and ``_primary_term`` (for conditional writes)."""

    @abstractmethod
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
        """The client library's streaming bulk helper: ``(ok, item)`` per action.

        Items that fail are yielded (never raised); 429 items are retried by the helper. A
        request that fails as a whole raises a :class:`~xlidx.errors.BackendError`.
        """

    # -- rendering (pure) ----------------------------------------------------------------------
    @abstractmethod
    def index_body(
        self,
        spec: IndexSpec,
        *,
        xlidx_version: str,
        now: datetime | None = None,
        analyzers: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        """The body that creates an index for ``spec``. ``analyzers``: those the cluster has
        (None: assume all); a language whose analyzer is missing falls back to ``standard``."""

    @abstractmethod
    def bm25_body(
        self,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> dict[str, Any]: ...

    @abstractmethod
    def knn_body(
        self,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> dict[str, Any]: ...

    def source_filter(self, plan: QueryPlan) -> dict[str, Any]:
        """What a hit returns of its ``_source`` (never the vectors)."""
        return _dsl.source_filter(plan)

    # -- server-side hybrid --------------------------------------------------------------------
    def server_fusion_supported(self, fusion: str, weights: tuple[float, float]) -> bool:
        """Whether the cluster can fuse a hybrid request with ``fusion`` and ``weights``."""
        caps = self.capabilities()
        if fusion not in caps.server_fusion:
            return False
        return fusion == "minmax" or weights[0] == weights[1]

    @abstractmethod
    def hybrid_search(
        self, index: str, plan: QueryPlan, weights: tuple[float, float]
    ) -> dict[str, Any]:
        """One hybrid request fused on the server (``plan.window`` hits, lean sources)."""
