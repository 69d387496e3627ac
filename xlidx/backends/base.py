"""The one seam between xlidx and a search engine: the :class:`Backend` interface.

Everything above ``backends/`` (ingest stages, the index lifecycle, searching, eval, the
workers and the CLI) receives a ``Backend`` and never imports a client library. A backend owns
its client (created on first use: constructors do no I/O) and the connection settings,
translates every client exception into the :class:`~xlidx.errors.BackendError` tree, renders
index specs and query plans into request bodies, and says what its cluster can do
(:class:`Capabilities`, detected from the cluster on first use, never assumed).

It speaks the domain: documents per language, a sample of a language's passages, the documents
a calibration has not reached yet, partial passage updates, and searches that return typed
:class:`~xlidx.backends.hits.RawHit` s. No query DSL and no raw hit is seen above it
(``count``, ``search``, ``msearch`` and ``scan`` take and give raw JSON for the backends
themselves and for tests).

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
from xlidx.backends.changes import Change, ShardHead
from xlidx.backends.hits import RawHit
from xlidx.config import ConnectionSettings
from xlidx.errors import AuthenticationFailed, BackendError

log = logging.getLogger("xlidx.backends")

if TYPE_CHECKING:
    from xlidx.pipeline.calibration import Calibration
    from xlidx.plans import QueryPlan
    from xlidx.spec import IndexSpec

__all__ = ["Backend", "BulkItem", "Capabilities", "RawHit"]

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

    def request(
        self,
        method: str,
        path: str,
        action: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One REST call the client libraries have no method for (a plugin's API); its reply."""
        raise BackendError(f"this backend cannot {action}: it makes no REST calls of its own")

    # -- the domain: documents -----------------------------------------------------------------
    @abstractmethod
    def documents(
        self, index: str, *, size: int = 500, source: Sequence[str] | None = None
    ) -> Iterator[RawHit]:
        """Every document of ``index`` (a scroll of ``size`` hits a page); ``source``: the
        fields of ``_source`` to read (default all)."""

    def pending_documents(self, index: str, *, size: int = 200) -> Iterator[RawHit]:
        """The documents an application wrote while ``xlidx serve`` could not enrich them
        (``xlidx.pending``, set by the ingest pipeline of ``xlidx connect``)."""
        raise BackendError("this backend cannot read pending documents")

    @abstractmethod
    def language_counts(self, index: str, *, any_text: bool = False) -> dict[str, int]:
        """Documents per language (``und`` included): by the document's language
        (``xlidx.lang``), or with ``any_text`` by every language it has text in
        (``xlidx.langs``: originals, passages and translations)."""

    @abstractmethod
    def count_text_languages(self, index: str, langs: Iterable[str]) -> int:
        """Documents with text in one of ``langs`` (what BM25 can match in them)."""

    @abstractmethod
    def sample_language(
        self, index: str, lang: str, size: int, *, fields: Sequence[str] = (), seed: int = 0
    ) -> list[RawHit]:
        """Up to ``size`` random documents in ``lang`` (the same ones on every run for one
        ``seed``), their sources holding ``xlidx.passages`` and ``fields``."""

    @abstractmethod
    def count_stale(self, index: str, cal: Calibration | None) -> int:
        """Documents with a passage not at ``cal``'s means (without ``cal``, or when it
        centers nothing: any centered passage)."""

    @abstractmethod
    def stale_documents(
        self, index: str, cal: Calibration | None, *, size: int = 200
    ) -> Iterator[RawHit]:
        """The documents :meth:`count_stale` counts, with their passages and their versions
        (``seq_no``, ``primary_term``) for :meth:`passages_update`."""

    @abstractmethod
    def means_carried(self, index: str, means: Iterable[str]) -> set[str]:
        """Of the calibration means ``means``, those some passage still carries."""

    def index_action(self, index: str, doc_id: str, source: Mapping[str, Any]) -> dict[str, Any]:
        """The :meth:`bulk` action that writes document ``doc_id`` whole (pure)."""
        return _dsl.index_action(index, doc_id, source)

    def passages_update(self, hit: RawHit, passages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The :meth:`bulk` action that replaces the passages of ``hit`` (read with its
        version), refused with 409 when the document changed since (pure)."""
        if hit.seq_no is None or hit.primary_term is None:
            raise ValueError(f"document {hit.id!r} was read without its version")
        return _dsl.passages_update(hit.index, hit.id, hit.seq_no, hit.primary_term, passages)

    # -- the domain: following an index (xlidx ingest --follow) ----------------------------------
    def shard_heads(self, index: str) -> list[ShardHead]:
        """Where each primary shard of ``index`` (an index, alias or pattern) stands: its
        concrete index and uuid, last ``_seq_no``, global checkpoint and live documents. One
        request; 404 when there is no such index."""
        raise BackendError("this backend cannot read shard positions")

    def changes(self, index: str, shard: int, *, after: int, upto: int, size: int) -> list[Change]:
        """The documents of shard ``shard`` of the concrete ``index`` last written with
        ``after < _seq_no <= upto``, oldest first, at most ``size`` (one request)."""
        raise BackendError("this backend cannot read changes by sequence number")

    def field_kind(self, index: str, field: str) -> str | None:
        """``date`` or ``number`` for a field of ``index`` that can order changes, ``""`` for
        a field of another type, None for a field no index of ``index`` maps."""
        raise BackendError("this backend cannot read field mappings")

    def changed_since(
        self, index: str, field: str, kind: str, *, after: Any, size: int
    ) -> list[Change]:
        """At most ``size`` documents with ``field`` at or after ``after`` (all with the field
        when None), in the field's order, each with the field's sort value."""
        raise BackendError("this backend cannot read changes by a field")

    def count_since(self, index: str, field: str, kind: str, after: Any) -> int:
        """Documents with ``field`` after ``after`` (all with the field when None)."""
        raise BackendError("this backend cannot count changes by a field")

    def document_ids(
        self, index: str, *, id_field: str | None = None, size: int = 5000
    ) -> Iterator[str]:
        """The id of every document of ``index`` (a scroll without sources): its
        ``id_field`` where it holds one, as ingest reads it, else its ``_id``."""
        raise BackendError("this backend cannot list document ids")

    def delete_action(self, index: str, doc_id: str) -> dict[str, Any]:
        """The :meth:`bulk` action that deletes document ``doc_id`` (pure)."""
        return {"_op_type": "delete", "_index": index, "_id": doc_id}

    def ensure_state_index(self, index: str) -> None:
        """Create the hidden index ``index`` where xlidx keeps small state documents (a
        follower's checkpoint and lock) unless it exists: one shard, sources stored, nothing
        indexed."""
        raise BackendError("this backend cannot keep state documents")

    def read_state(self, index: str, doc_id: str) -> RawHit | None:
        """The state document ``doc_id`` with its version (``seq_no``, ``primary_term``), read
        in real time; None when there is none."""
        raise BackendError("this backend cannot keep state documents")

    def write_state(
        self,
        index: str,
        doc_id: str,
        source: Mapping[str, Any],
        *,
        create: bool = False,
        version: RawHit | None = None,
    ) -> RawHit:
        """Write the state document ``doc_id``: only if there is none with ``create``, only if
        it is still at ``version``'s seq_no and primary term with ``version`` (else a
        :class:`~xlidx.errors.BackendError` with status 409). Returns it with its version."""
        raise BackendError("this backend cannot keep state documents")

    def delete_state(self, index: str, doc_id: str, *, version: RawHit | None = None) -> bool:
        """Delete the state document ``doc_id`` (only if still at ``version``, when given);
        False when it was not there, or no longer at ``version``."""
        raise BackendError("this backend cannot keep state documents")

    # -- the domain: search ----------------------------------------------------------------------
    @abstractmethod
    def search_bm25(
        self,
        index: str,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> list[RawHit]:
        """The BM25 query of ``plan`` (:meth:`bm25_body`), its hits in order."""

    @abstractmethod
    def search_knn(
        self,
        index: str,
        plan: QueryPlan,
        *,
        size: int | None = None,
        offset: int | None = None,
        lean: bool = False,
    ) -> list[RawHit]:
        """The kNN query of ``plan`` (:meth:`knn_body`), its hits in order."""

    @abstractmethod
    def search_candidates(
        self, index: str, plan: QueryPlan, window: int
    ) -> tuple[list[RawHit], list[RawHit]]:
        """The first ``window`` BM25 and kNN hits of ``plan`` in one request, lean (sources
        hold the language only, unless the plan highlights): the candidates of client fusion."""

    @abstractmethod
    def hit_sources(
        self, index: str, plan: QueryPlan, ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """``{id: _source}`` of the documents ``ids`` that exist, as a hit of ``plan`` returns
        its source (:meth:`source_filter`: never the vectors)."""

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
    ) -> list[RawHit]:
        """One hybrid request fused on the server: ``plan.window`` hits in order, lean
        sources (the caller keeps ``[offset : offset + size]``)."""
