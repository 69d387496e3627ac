"""Run a query against an xlidx index: detect, translate, encode, search, fuse.

Hybrid fusion runs on the server when the cluster can (OpenSearch's ``hybrid`` query and an
xlidx search pipeline with neural-search; Elasticsearch's ``linear``/``rrf`` retrievers),
else on the client over the two result lists, with the same formulas. Language balance and
``explain`` always fuse on the client. Weights: :mod:`xlidx.query.hybrid`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from xlidx.backends.base import Backend
from xlidx.errors import BackendError, MappingError
from xlidx.indices.manage import IndexState
from xlidx.query.hybrid import default_weights, fuse
from xlidx.query.plan import Query, QueryPlan
from xlidx.search.encode import QueryEncoder
from xlidx.search.facts import IndexFacts
from xlidx.search.results import Hit, QueryResult, hits_by_id, make_hit, ranked

log = logging.getLogger("xlidx.search")


class Searcher:
    """Queries one xlidx index. Models load on first use; index facts are cached."""

    def __init__(
        self,
        backend: Backend,
        index: str,
        *,
        embedder: Any = None,
        translator: Any = None,
        device: str = "auto",
        state: IndexState | None = None,
        load: Callable[[str, str], Any] | None = None,
        max_age: float | None = None,
    ) -> None:
        """``state`` pins one version (``indices.manage.version_state``) instead of the one
        the alias ``index`` points at; ``load`` and ``max_age``: see
        :class:`~xlidx.search.encode.QueryEncoder` and :class:`~xlidx.search.facts.IndexFacts`."""
        self.backend = backend
        self.index = index
        self.facts = IndexFacts(backend, index, state, max_age=max_age)
        self.encoder = QueryEncoder(
            self.facts, embedder=embedder, translator=translator, device=device, load=load
        )
        self._server_failed = False

    # -- what the encoder and the facts know ---------------------------------------------------
    def state(self) -> IndexState:
        return self.facts.state()

    def embedder(self) -> Any:
        return self.encoder.embedder()

    def detect(self, text: str) -> str:
        return self.encoder.detect(text)

    def prepare(self, query: Query, *, translate: bool = False) -> tuple[Query, dict[str, float]]:
        return self.encoder.prepare(query, translate=translate)

    def weights(self, plan: QueryPlan) -> tuple[float, float]:
        if plan.weights is not None:
            return plan.weights
        reachable = set(plan.translations)
        cal = self.encoder.calibration() if plan.centering else None
        centered = cal is not None and cal.centers
        if plan.query_lang and plan.query_lang != "und":
            reachable.add(plan.query_lang)
            return default_weights(self.facts.reach(frozenset(reachable)), centered=centered)
        # language unknown: keep BM25 at half weight (on a centered index, at the gate)
        return default_weights(0.5, centered=centered)

    def server_fusion_ok(
        self, plan: QueryPlan, weights: tuple[float, float], explain: bool
    ) -> bool:
        return (
            not self._server_failed
            and not plan.balance
            and not explain
            and self.backend.server_fusion_supported(plan.fusion, weights)
        )

    # -- search ------------------------------------------------------------------------------
    def search(
        self,
        query: Query,
        *,
        translate: bool = False,
        explain: bool = False,
        fuse_on: str | None = None,  # "server", "client", or None = best available
    ) -> QueryResult:
        t0 = time.perf_counter()
        query, timings = self.prepare(query, translate=translate)
        plan = query.plan()
        index = self.state().index
        if plan.mode == "bm25":
            hits = [make_hit(h, h.score) for h in self.backend.search_bm25(index, plan)]
            for r, h in enumerate(hits, start=plan.offset + 1):
                h.bm25_rank, h.bm25_score = r, h.score
            return self._result(plan, hits, t0, timings)
        if plan.mode == "knn":
            return self._result(plan, self._knn_hits(plan), t0, timings)

        weights = self.weights(plan)
        server_ok = self.server_fusion_ok(plan, weights, explain)
        if fuse_on == "server" and not server_ok:
            raise MappingError(
                "server-side fusion needs a cluster that fuses (OpenSearch with neural-search, "
                "Elasticsearch with the linear/rrf retrievers), minmax (or RRF with equal "
                "weights), and no --balance or --explain"
            )
        where = fuse_on or ("server" if server_ok else "client")
        if weights[0] == 0.0:  # BM25 gated off: the kNN ranking is the answer
            hits = self._knn_hits(plan)
            return self._result(plan, hits, t0, timings, weights=weights, fused_on="client")
        if where == "server":
            try:
                fused_hits = self.backend.hybrid_search(index, plan, weights)
            except BackendError as exc:
                # a capability probe can pass where the real request fails (a licence that
                # covers the probe's empty search only); fall back unless the user insisted
                if fuse_on == "server" or exc.status not in (400, 403):
                    raise
                log.warning("server-side fusion failed (%s); fusing on the client", exc)
                # a licence refusal holds for every query; a 400 may be this query's own
                self._server_failed = exc.status == 403
            else:
                page = fused_hits[plan.offset : plan.offset + plan.size]
                hits = self._with_sources(plan, [make_hit(h, h.score) for h in page])
                return self._result(plan, hits, t0, timings, weights=weights, fused_on="server")

        bm25_hits, knn_hits = self.backend.search_candidates(index, plan, plan.window)
        bm25, knn = ranked(bm25_hits), ranked(knn_hits)
        by_id = hits_by_id(bm25_hits, knn_hits)
        langs = {i: str(h.xlidx.get("lang", "")) for i, h in by_id.items()}
        fused = fuse(plan, bm25, knn, weights, langs)[plan.offset : plan.offset + plan.size]
        hits = []
        for f in fused:
            h = make_hit(by_id[f.id], f.score)
            h.bm25_rank, h.knn_rank = f.ranks
            h.bm25_score, h.knn_score = f.scores
            hits.append(h)
        hits = self._with_sources(plan, hits)
        return self._result(plan, hits, t0, timings, weights=weights, fused_on="client")

    def _knn_hits(self, plan: QueryPlan) -> list[Hit]:
        raw = self.backend.search_knn(
            self.state().index, plan, size=plan.offset + plan.size, offset=0
        )
        hits = [make_hit(h, h.score) for h in raw][plan.offset :]
        for r, h in enumerate(hits, start=plan.offset + 1):
            h.knn_rank, h.knn_score = r, h.score
        return hits

    def _with_sources(self, plan: QueryPlan, hits: list[Hit]) -> list[Hit]:
        """Fetch the sources of the final page (fusion candidates were fetched lean)."""
        if plan.highlight or not hits:
            return hits
        found = self.backend.hit_sources(self.state().index, plan, [h.id for h in hits])
        for h in hits:
            h.source = dict(found.get(h.id, {}))
        return hits

    def _result(
        self,
        plan: QueryPlan,
        hits: list[Hit],
        t0: float,
        timings: Mapping[str, float],
        *,
        weights: tuple[float, float] | None = None,
        fused_on: str | None = None,
    ) -> QueryResult:
        return QueryResult(
            mode=plan.mode,
            took_ms=(time.perf_counter() - t0) * 1000,
            hits=hits,
            query_lang=plan.query_lang,
            fusion=plan.fusion if plan.mode == "hybrid" else None,
            weights=weights,
            fused_on=fused_on,
            encode_ms=timings.get("encode_ms", 0.0),
            translate_ms=timings.get("translate_ms", 0.0),
            translations=dict(plan.translations),
        )
