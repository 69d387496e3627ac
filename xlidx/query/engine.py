"""Run a query against an xlidx index: detect, translate, encode, search, fuse.

Hybrid fusion runs on the server (OpenSearch's ``hybrid`` query and an xlidx search pipeline)
when neural-search is installed, else on the client over the two result lists; both give the
same ranking (tested). Language balance and ``explain`` always fuse on the client.

Default weights: BM25 only helps for documents that have text in a language the query is
available in (its own, or a translation of it). xlidx counts those documents and scales the
BM25 weight (0.25 against kNN's 0.75) by their share, and leaves BM25 out below 5%, so a query
that BM25 cannot match across languages falls back to kNN instead of dragging the dense
ranking down.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch

from xlidx.backends.opensearch import call
from xlidx.backends.opensearch_query import (
    bm25_body,
    hybrid_body,
    knn_body,
    pipeline_body,
    pipeline_name,
    source_filter,
)
from xlidx.config import ConnectionSettings
from xlidx.errors import MappingError
from xlidx.mapping.manage import IndexState, resolve
from xlidx.mapping.spec import check_model
from xlidx.query.fusion import Fused, fuse_minmax, fuse_rrf, minmax_normalize, per_group_minmax
from xlidx.query.plan import Query, QueryPlan

DEFAULT_WEIGHTS = (0.25, 0.75)  # kNN-leaning: measured on Tatoeba EN→FR with distractors
GATE_BELOW = 0.05  # BM25 reaches fewer than 5% of the documents: leave it out


@dataclass
class Hit:
    id: str
    score: float
    lang: str | None
    source: dict[str, Any]
    highlight: dict[str, list[str]] = field(default_factory=dict)
    bm25_rank: int | None = None
    bm25_score: float | None = None
    knn_rank: int | None = None
    knn_score: float | None = None

    def to_json(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "score": self.score,
            "lang": self.lang,
            "source": self.source,
        }
        if self.highlight:
            out["highlight"] = self.highlight
        if explain:
            out["explain"] = {
                "bm25": {"rank": self.bm25_rank, "score": self.bm25_score},
                "knn": {"rank": self.knn_rank, "score": self.knn_score},
            }
        return out


@dataclass
class QueryResult:
    mode: str
    took_ms: float
    hits: list[Hit]
    query_lang: str | None = None
    fusion: str | None = None
    weights: tuple[float, float] | None = None
    fused_on: str | None = None  # "server" | "client" for hybrid
    encode_ms: float = 0.0
    translate_ms: float = 0.0
    translations: dict[str, str] = field(default_factory=dict)

    def to_json(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.mode,
            "took_ms": round(self.took_ms, 2),
            "hits": [h.to_json(explain) for h in self.hits],
        }
        if explain:
            out["explain"] = {
                "query_lang": self.query_lang,
                "fusion": self.fusion,
                "weights": list(self.weights) if self.weights else None,
                "fused_on": self.fused_on,
                "encode_ms": round(self.encode_ms, 2),
                "translate_ms": round(self.translate_ms, 2),
                "translations": self.translations,
            }
        return out


def _ranked(res: Mapping[str, Any]) -> list[tuple[str, float]]:
    return [(h["_id"], float(h["_score"])) for h in res["hits"]["hits"]]


def _hits_by_id(*responses: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for res in responses:
        for h in res["hits"]["hits"]:
            out.setdefault(h["_id"], h)
    return out


def _make_hit(h: Mapping[str, Any], score: float) -> Hit:
    src = dict(h.get("_source") or {})
    x = src.get("xlidx") or {}
    return Hit(
        id=h["_id"],
        score=score,
        lang=x.get("lang") if isinstance(x, dict) else None,
        source=src,
        highlight=dict(h.get("highlight") or {}),
    )


def default_weights(share: float) -> tuple[float, float]:
    """BM25's weight scaled by the share of documents it can match; gated below 5%."""
    bm25, knn = DEFAULT_WEIGHTS
    if share < GATE_BELOW:
        return (0.0, knn)
    return (round(bm25 * share, 2), knn)


def fuse(
    plan: QueryPlan,
    bm25: Sequence[tuple[str, float]],
    knn: Sequence[tuple[str, float]],
    weights: tuple[float, float],
    langs: Mapping[str, str] | None = None,
) -> list[Fused]:
    """Client-side fusion of the two lists for ``plan`` (pure)."""
    lists = [bm25, knn]
    if plan.fusion == "rrf":
        return fuse_rrf(lists, weights, rank_constant=plan.rank_constant)
    if plan.balance and langs is not None:
        # BM25 scores are not comparable across languages (analyzers, vocabularies); cosine
        # scores are. So only the BM25 list is normalized per document language.
        return fuse_minmax(lists, weights, normalizers=(per_group_minmax(langs), minmax_normalize))
    return fuse_minmax(lists, weights)


class Searcher:
    """Queries one xlidx index. Models load on first use; index facts are cached."""

    def __init__(
        self,
        client: OpenSearch,
        settings: ConnectionSettings,
        index: str,
        *,
        embedder: Any = None,
        translator: Any = None,
        device: str = "auto",
    ) -> None:
        self.client = client
        self.settings = settings
        self.index = index
        self.device = device
        self._embedder = embedder
        self._translator = translator
        self._detector: Any = None
        self._state: IndexState | None = None
        self._neural: bool | None = None
        self._pipelines: set[str] = set()
        self._reach: dict[frozenset[str], float] = {}
        self._total: int | None = None

    # -- index facts ------------------------------------------------------------------------
    def state(self) -> IndexState:
        if self._state is None:
            st = resolve(self.client, self.settings, self.index)
            if st is None:
                raise MappingError(f"no xlidx index named {self.index!r}")
            self._state = st
        return self._state

    def has_neural_search(self) -> bool:
        if self._neural is None:
            plugins = call(
                self.settings, "list plugins", lambda: self.client.cat.plugins(format="json")
            )
            self._neural = any(p.get("component") == "opensearch-neural-search" for p in plugins)
        return self._neural

    def reach(self, langs: frozenset[str]) -> float:
        """Share of documents with text in one of ``langs`` (what BM25 can match)."""
        if not langs:
            return 0.0
        if langs not in self._reach:
            index = self.state().index
            if self._total is None:
                self._total = call(
                    self.settings, "count documents", lambda: self.client.count(index=index)
                )["count"]
            if not self._total:
                self._reach[langs] = 0.0
            else:
                n = call(
                    self.settings,
                    "count documents per language",
                    lambda: self.client.count(
                        index=index, body={"query": {"terms": {"xlidx.langs": sorted(langs)}}}
                    ),
                )["count"]
                self._reach[langs] = n / self._total
        return self._reach[langs]

    # -- models -------------------------------------------------------------------------------
    def embedder(self) -> Any:
        emb = self.state().xlidx_meta.get("embedding", {})
        if self._embedder is None:
            from xlidx.pipeline.embed import load_embedder

            source = str(emb.get("source") or emb.get("model"))
            self._embedder = load_embedder(source, device=self.device)
        check_model(self.state().meta, self._embedder.describe(), self.index)
        return self._embedder

    def detect(self, text: str) -> str:
        if self._detector is None:
            from xlidx.pipeline.detect import Detector

            langs = self.state().xlidx_meta.get("languages") or ["en"]
            self._detector = Detector(tuple(dict.fromkeys([*langs, "en"])))
        lang: str = self._detector.detect_many([text])[0]
        return lang

    def translate_query(self, text: str, src: str) -> dict[str, str]:
        from xlidx.errors import ModelError

        x = self.state().xlidx_meta
        targets = [
            lang
            for lang in dict.fromkeys([*x.get("languages", []), *x.get("translate_to", [])])
            if lang != src
        ]
        if self._translator is None:
            from xlidx.pipeline.translate import Translator

            self._translator = Translator(device=self.device)
        out: dict[str, str] = {}
        for tgt in targets:
            try:
                self._translator.route(src, tgt)
            except ModelError:
                continue
            out[tgt] = self._translator.translate([text], src, tgt)[0]
        return out

    # -- search ------------------------------------------------------------------------------
    def prepare(self, query: Query, *, translate: bool = False) -> tuple[Query, dict[str, float]]:
        """Fill in query language, translations and vector; return timings."""
        plan = query.plan()
        timings = {"encode_ms": 0.0, "translate_ms": 0.0}
        text_fields = self.state().xlidx_meta.get("text_fields")
        if text_fields and plan.text_fields == QueryPlan(text="x").text_fields:
            query = query.text_fields(*text_fields)
        if plan.query_lang is None and plan.mode != "knn":
            query = query.query_lang(self.detect(plan.text))
        plan = query.plan()
        if translate and plan.mode != "knn" and plan.query_lang not in (None, "und"):
            t0 = time.perf_counter()
            assert plan.query_lang is not None
            query = query.translations(self.translate_query(plan.text, plan.query_lang))
            timings["translate_ms"] = (time.perf_counter() - t0) * 1000
        if plan.mode != "bm25" and plan.vector is None:
            t0 = time.perf_counter()
            vec = self.embedder().encode_query([plan.text])[0]
            query = query.vector([float(v) for v in vec])
            timings["encode_ms"] = (time.perf_counter() - t0) * 1000
        return query, timings

    def weights(self, plan: QueryPlan) -> tuple[float, float]:
        if plan.weights is not None:
            return plan.weights
        reachable = set(plan.translations)
        if plan.query_lang and plan.query_lang != "und":
            reachable.add(plan.query_lang)
            return default_weights(self.reach(frozenset(reachable)))
        return default_weights(0.5)  # language unknown: keep BM25, at half weight

    def _search(self, body: dict[str, Any], action: str, **params: Any) -> dict[str, Any]:
        index = self.state().index
        res: dict[str, Any] = call(
            self.settings,
            action,
            lambda: self.client.search(index=index, body=body, params=params or None),
        )
        return res

    def _ensure_pipeline(self, name: str, body: dict[str, Any]) -> None:
        if name in self._pipelines:
            return
        call(
            self.settings,
            f"create search pipeline {name}",
            lambda: self.client.transport.perform_request(
                "PUT", f"/_search/pipeline/{name}", body=body
            ),
        )
        self._pipelines.add(name)

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
        if plan.mode == "bm25":
            res = self._search(bm25_body(plan), "run the BM25 query")
            hits = [_make_hit(h, float(h["_score"])) for h in res["hits"]["hits"]]
            for r, h in enumerate(hits, start=plan.offset + 1):
                h.bm25_rank, h.bm25_score = r, h.score
            return self._result(plan, hits, t0, timings)
        if plan.mode == "knn":
            return self._result(plan, self._knn_hits(plan), t0, timings)

        weights = self.weights(plan)
        server_ok = (
            self.has_neural_search()
            and not plan.balance
            and not explain
            and (plan.fusion == "minmax" or weights[0] == weights[1])
        )
        where = fuse_on or ("server" if server_ok else "client")
        if where == "server" and not server_ok and fuse_on == "server":
            raise MappingError(
                "server-side fusion needs neural-search, minmax (or RRF with equal weights), "
                "and no --balance or --explain"
            )
        if weights[0] == 0.0:  # BM25 gated off: the kNN ranking is the answer
            hits = self._knn_hits(plan)
            return self._result(plan, hits, t0, timings, weights=weights, fused_on="client")
        if where == "server":
            name = pipeline_name(plan.fusion, weights, plan.rank_constant)
            self._ensure_pipeline(name, pipeline_body(plan.fusion, weights, plan.rank_constant))
            res = self._search(
                hybrid_body(plan, lean=True), "run the hybrid query", search_pipeline=name
            )
            page = res["hits"]["hits"][plan.offset : plan.offset + plan.size]
            hits = self._with_sources(plan, [_make_hit(h, float(h["_score"])) for h in page])
            return self._result(plan, hits, t0, timings, weights=weights, fused_on="server")

        window = plan.window
        index = self.state().index
        msearch = call(
            self.settings,
            "run the BM25 and kNN queries",
            lambda: self.client.msearch(
                body=[
                    {"index": index},
                    bm25_body(plan, size=window, offset=0, lean=True),
                    {"index": index},
                    knn_body(plan, size=window, offset=0, lean=True),
                ]
            ),
        )
        responses = msearch["responses"]
        for r in responses:
            if "error" in r:
                raise MappingError(f"search failed: {r['error'].get('reason', r['error'])}")
        bm25, knn = _ranked(responses[0]), _ranked(responses[1])
        by_id = _hits_by_id(*responses)
        langs = {
            i: str((h.get("_source") or {}).get("xlidx", {}).get("lang", ""))
            for i, h in by_id.items()
        }
        fused = fuse(plan, bm25, knn, weights, langs)[plan.offset : plan.offset + plan.size]
        hits = []
        for f in fused:
            h = _make_hit(by_id[f.id], f.score)
            h.bm25_rank, h.knn_rank = f.ranks
            h.bm25_score, h.knn_score = f.scores
            hits.append(h)
        hits = self._with_sources(plan, hits)
        return self._result(plan, hits, t0, timings, weights=weights, fused_on="client")

    def _knn_hits(self, plan: QueryPlan) -> list[Hit]:
        body = knn_body(plan, size=plan.offset + plan.size, offset=0)
        res = self._search(body, "run the kNN query")
        hits = [_make_hit(h, float(h["_score"])) for h in res["hits"]["hits"]][plan.offset :]
        for r, h in enumerate(hits, start=plan.offset + 1):
            h.knn_rank, h.knn_score = r, h.score
        return hits

    def _with_sources(self, plan: QueryPlan, hits: list[Hit]) -> list[Hit]:
        """Fetch the sources of the final page (fusion candidates were fetched lean)."""
        if plan.highlight or not hits:
            return hits
        index = self.state().index
        src = source_filter(plan)
        params = {"_source_excludes": ",".join(src["excludes"])}
        if "includes" in src:
            params["_source_includes"] = ",".join(src["includes"])
        res = call(
            self.settings,
            "fetch the hits' documents",
            lambda: self.client.mget(
                index=index, body={"ids": [h.id for h in hits]}, params=params
            ),
        )
        found = {d["_id"]: d.get("_source") or {} for d in res.get("docs", []) if d.get("found")}
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
