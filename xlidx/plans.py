"""The engine-neutral query plan: frozen data that a backend renders into request bodies.

Built by :class:`xlidx.query.plan.Query` (the immutable builder); kept apart from ``query/`` so
that backends can render a plan without importing the query layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["hybrid", "bm25", "knn"]
Fusion = Literal["minmax", "rrf"]
MODES: tuple[str, ...] = ("hybrid", "bm25", "knn")
FUSIONS: tuple[str, ...] = ("minmax", "rrf")
MAX_QUERY_CHARS = 4096


@dataclass(frozen=True)
class TermFilter:
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class RangeFilter:
    field: str
    gte: Any = None
    lte: Any = None
    gt: Any = None
    lt: Any = None


Filter = TermFilter | RangeFilter


@dataclass(frozen=True)
class QueryPlan:
    text: str
    mode: Mode = "hybrid"
    size: int = 10
    offset: int = 0
    candidates: int = 100  # per side, before fusion; also the kNN k
    ef_search: int | None = None
    fusion: Fusion = "minmax"
    weights: tuple[float, float] | None = None  # (bm25, knn); None = xlidx decides
    rank_constant: int = 60
    text_fields: tuple[str, ...] = ("title", "body", "text")
    query_lang: str | None = None
    translations: Mapping[str, str] = field(default_factory=dict)  # lang -> query text
    vector: tuple[float, ...] | None = None
    filters: tuple[Filter, ...] = ()
    langs: tuple[str, ...] = ()  # restrict to documents in these languages
    highlight: bool = False
    source_includes: tuple[str, ...] | None = None
    balance: bool = False  # per-language normalization before fusion
    centering: bool = True  # center the query vector when the index is calibrated to

    @property
    def window(self) -> int:
        """How many hits each side must return for ``offset + size`` fused results."""
        return max(self.candidates, self.offset + self.size)
