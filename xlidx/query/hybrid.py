"""How xlidx combines BM25 and kNN for a plan: default weights and fusion (pure).

Default weights: BM25 only helps for documents that have text in a language the query is
available in (its own, or a translation of it). xlidx counts those documents and scales the
BM25 weight (0.25 against kNN's 0.75) by their share, and leaves BM25 out below 5%, so a query
that BM25 cannot match across languages falls back to kNN instead of dragging the dense
ranking down. On an index whose vectors are centered (:mod:`xlidx.pipeline.calibration`), the
gate is 90%: there BM25 over the query's own language only would put that language back on top.
The same rule holds on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xlidx.plans import QueryPlan
from xlidx.query.fusion import Fused, fuse_minmax, fuse_rrf, minmax_normalize, per_group_minmax

DEFAULT_WEIGHTS = (0.25, 0.75)  # kNN-leaning: measured on Tatoeba EN→FR with distractors
GATE_BELOW = 0.05  # BM25 reaches fewer than 5% of the documents: leave it out
# On a centered index (a mixed one whose vectors were made language-neutral), BM25 that cannot
# match nearly every document (the query translated into the index's languages) ranks the
# query's own language first again, which centering just undid: leave it out there
GATE_BELOW_CENTERED = 0.9


def default_weights(share: float, *, centered: bool = False) -> tuple[float, float]:
    """BM25's weight scaled by the share of documents it can match; gated below 5% (below
    90% on a centered index)."""
    bm25, knn = DEFAULT_WEIGHTS
    if share < (GATE_BELOW_CENTERED if centered else GATE_BELOW):
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
