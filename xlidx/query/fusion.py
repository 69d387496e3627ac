"""Fuse two ranked lists (pure functions over (id, score) lists).

``minmax`` mirrors OpenSearch neural-search's normalization processor exactly (checked against
the server in the tests): each list is min-max normalized, the lowest score becomes 0.001
rather than 0 and a single hit 1.0; a document's fused score is ``Σ wᵢ·normᵢ / Σ wᵢ`` over
the lists it appears in (absent = 0). ``rrf`` is reciprocal-rank fusion,
``Σ wᵢ / (rank_constant + rankᵢ)`` with weights scaled to average 1 (ranks from 1; equal
weights give exactly the server's RRF scores).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

MIN_SCORE = 0.001

Ranked = Sequence[tuple[str, float]]


@dataclass(frozen=True)
class Fused:
    id: str
    score: float
    ranks: tuple[int | None, ...] = field(default=())  # 1-based rank in each input list
    scores: tuple[float | None, ...] = field(default=())  # raw score in each input list


def minmax_normalize(hits: Ranked) -> dict[str, float]:
    if not hits:
        return {}
    scores = [s for _, s in hits]
    lo, hi = min(scores), max(scores)
    out: dict[str, float] = {}
    for doc_id, s in hits:
        if hi == lo:
            out[doc_id] = 1.0
        else:
            n = (s - lo) / (hi - lo)
            out[doc_id] = MIN_SCORE if n == 0.0 else n
    return out


def _details(
    lists: Sequence[Ranked],
) -> tuple[dict[str, list[int | None]], dict[str, list[float | None]]]:
    ranks: dict[str, list[int | None]] = {}
    raw: dict[str, list[float | None]] = {}
    for i, hits in enumerate(lists):
        for r, (doc_id, s) in enumerate(hits, start=1):
            ranks.setdefault(doc_id, [None] * len(lists))
            raw.setdefault(doc_id, [None] * len(lists))
            if ranks[doc_id][i] is None:
                ranks[doc_id][i] = r
                raw[doc_id][i] = s
    return ranks, raw


def _finish(totals: Mapping[str, float], lists: Sequence[Ranked]) -> list[Fused]:
    ranks, raw = _details(lists)

    def best_rank(d: str) -> int:
        return min((r for r in ranks[d] if r is not None), default=1 << 30)

    # ties (common after normalization) go to the document ranked higher in either list
    order = sorted(totals, key=lambda d: (-totals[d], best_rank(d), d))
    return [Fused(d, totals[d], tuple(ranks[d]), tuple(raw[d])) for d in order]


def fuse_minmax(
    lists: Sequence[Ranked],
    weights: Sequence[float],
    *,
    normalizers: Sequence[Callable[[Ranked], dict[str, float]]] | None = None,
) -> list[Fused]:
    """Weighted mean of min-max normalized scores; ``normalizers`` may replace the plain
    min-max per list (e.g. per-language normalization of one of them)."""
    if len(lists) != len(weights):
        raise ValueError("one weight per list")
    norms = list(normalizers) if normalizers is not None else [minmax_normalize] * len(lists)
    if len(norms) != len(lists):
        raise ValueError("one normalizer per list")
    total_w = sum(weights)
    totals: dict[str, float] = {}
    for hits, w, normalize in zip(lists, weights, norms, strict=True):
        for doc_id, n in normalize(hits).items():
            totals[doc_id] = totals.get(doc_id, 0.0) + w * n / total_w
    return _finish(totals, lists)


def fuse_rrf(
    lists: Sequence[Ranked], weights: Sequence[float], *, rank_constant: int = 60
) -> list[Fused]:
    if len(lists) != len(weights):
        raise ValueError("one weight per list")
    scale = len(weights) / sum(weights)  # equal weights count 1 each, as on the server
    totals: dict[str, float] = {}
    for hits, w in zip(lists, weights, strict=True):
        w *= scale
        seen: set[str] = set()
        for r, (doc_id, _s) in enumerate(hits, start=1):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            totals[doc_id] = totals.get(doc_id, 0.0) + w / (rank_constant + r)
    return _finish(totals, lists)


def per_group_minmax(groups: Mapping[str, str]) -> Callable[[Ranked], dict[str, float]]:
    """Min-max within each group (e.g. document language) instead of over the whole list.

    Counters a retriever's preference for some languages: the best document of every language
    gets 1.0 before fusion. Documents with no group form a group of their own.
    """

    def normalize(hits: Ranked) -> dict[str, float]:
        by_group: dict[str, list[tuple[str, float]]] = {}
        for doc_id, s in hits:
            by_group.setdefault(groups.get(doc_id, ""), []).append((doc_id, s))
        out: dict[str, float] = {}
        for members in by_group.values():
            out.update(minmax_normalize(members))
        return out

    return normalize
