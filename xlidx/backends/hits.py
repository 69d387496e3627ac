"""Search hits as xlidx reads them: the one place an engine's raw hit JSON is parsed.

Both engines answer a search (and a scroll) with ``{"hits": {"hits": [...]}}``, each hit
carrying ``_index``, ``_id``, ``_score``, ``_source`` and, when asked, ``highlight``,
``_seq_no`` and ``_primary_term``. Everything above ``backends/`` sees :class:`RawHit` s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RawHit:
    """One document an engine returned, as it returned it.

    ``score`` is 0.0 where the engine gave none (a scroll); ``seq_no`` and ``primary_term``
    are set where versions were asked for (conditional writes).
    """

    index: str
    id: str
    score: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)
    highlight: dict[str, list[str]] = field(default_factory=dict)
    seq_no: int | None = None
    primary_term: int | None = None

    @property
    def xlidx(self) -> dict[str, Any]:
        """The ``xlidx`` part of the source (``{}`` when there is none)."""
        x = self.source.get("xlidx")
        return x if isinstance(x, dict) else {}


def raw_hit(h: Mapping[str, Any]) -> RawHit:
    """A hit of a search or scroll response (pure)."""
    score = h.get("_score")
    seq_no, term = h.get("_seq_no"), h.get("_primary_term")
    return RawHit(
        index=str(h.get("_index", "")),
        id=str(h["_id"]),
        score=float(score) if score is not None else 0.0,
        source=dict(h.get("_source") or {}),
        highlight={k: list(v) for k, v in (h.get("highlight") or {}).items()},
        seq_no=int(seq_no) if seq_no is not None else None,
        primary_term=int(term) if term is not None else None,
    )


def hits_of(response: Mapping[str, Any]) -> list[RawHit]:
    """The hits of a search response, in order (pure)."""
    return [raw_hit(h) for h in response["hits"]["hits"]]


def buckets_of(response: Mapping[str, Any], name: str) -> dict[str, int]:
    """``{key: doc_count}`` of a terms aggregation ``name`` in a search response (pure)."""
    buckets = response.get("aggregations", {}).get(name, {}).get("buckets", [])
    return {str(b["key"]): int(b["doc_count"]) for b in buckets}
