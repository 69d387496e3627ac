"""Hits and query results, and turning a backend's raw hits into them (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xlidx.backends.hits import RawHit


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

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Hit:
        """The hit :meth:`to_json` (with ``explain``) wrote."""
        ranks = d.get("explain") or {}
        bm25, knn = ranks.get("bm25") or {}, ranks.get("knn") or {}
        return cls(
            id=str(d["id"]), score=float(d["score"]), lang=d.get("lang"),
            source=dict(d.get("source") or {}), highlight=dict(d.get("highlight") or {}),
            bm25_rank=bm25.get("rank"), bm25_score=bm25.get("score"),
            knn_rank=knn.get("rank"), knn_score=knn.get("score"),
        )  # fmt: skip


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

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QueryResult:
        """The result :meth:`to_json` (with ``explain``) wrote: what ``xlidx serve`` answers."""
        ex = d.get("explain") or {}
        weights = ex.get("weights")
        return cls(
            mode=str(d["mode"]), took_ms=float(d["took_ms"]),
            hits=[Hit.from_json(h) for h in d.get("hits", [])],
            query_lang=ex.get("query_lang"), fusion=ex.get("fusion"),
            weights=(float(weights[0]), float(weights[1])) if weights else None,
            fused_on=ex.get("fused_on"), encode_ms=float(ex.get("encode_ms") or 0.0),
            translate_ms=float(ex.get("translate_ms") or 0.0),
            translations=dict(ex.get("translations") or {}),
        )  # fmt: skip


def ranked(hits: Sequence[RawHit]) -> list[tuple[str, float]]:
    """``(id, score)`` of hits, in order."""
    return [(h.id, h.score) for h in hits]


def hits_by_id(*lists: Sequence[RawHit]) -> dict[str, RawHit]:
    """Each id's first hit across ``lists``."""
    out: dict[str, RawHit] = {}
    for hits in lists:
        for h in hits:
            out.setdefault(h.id, h)
    return out


def make_hit(h: RawHit, score: float) -> Hit:
    return Hit(
        id=h.id,
        score=score,
        lang=h.xlidx.get("lang"),
        source=dict(h.source),
        highlight=dict(h.highlight),
    )
