"""Paired comparison of two retrieval runs, with a significance test (computed by ranx).

:func:`compare_runs` scores two runs on the same judged queries and asks ranx's ``compare``
whether each measure's difference is significant: ``"student"`` (two-sided paired t-test,
scipy's ``ttest_rel``), ``"fisher"`` (Fisher's randomization test, approximated by
permutations) or ``"tukey"`` (Tukey's HSD, which treats the two runs as independent samples:
it is not a paired test, prefer the other two for two runs).

The query set is the one :func:`xlidx.eval.metrics.evaluate` averages over: every query with
at least one relevant (relevance > 0) judgment. ranx refuses runs whose query ids differ from
the qrels' (unless told to "make them comparable"), so both runs are restricted to those
queries and given an empty ranking for each one they lack (``Run.make_comparable``): such a
query scores 0 on every measure in both the mean and the test, and the two runs are compared
pairwise over the same queries. Queries the qrels do not judge relevant are left out. Hits go
through :func:`xlidx.eval.metrics.ordered` first (strictly decreasing single-precision scores,
first of a repeated document kept), so ranx ranks exactly as the ir-measures evaluation does
and the means agree with :func:`~xlidx.eval.metrics.evaluate`.

ranx (and numba, pandas, ir_datasets under it) is imported inside the functions: importing
this module stays cheap. The first call in a fresh environment compiles ranx's numba kernels
(seconds); numba caches them on disk, later processes load them. ranx's warnings and prints
are kept out of the caller's output.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xlidx.errors import ConfigError
from xlidx.eval.metrics import MEASURES, judged_queries, ordered, read_trec_run

Run = Mapping[str, Sequence[tuple[str, float]]]
Judgments = Mapping[str, Mapping[str, int]]

TESTS: tuple[str, ...] = ("student", "fisher", "tukey")

RANX_NAMES: dict[str, str] = {
    "nDCG@10": "ndcg@10",
    "RR@10": "mrr@10",
    "R@1": "recall@1",
    "R@100": "recall@100",
    "P@10": "precision@10",
    "AP": "map",
    "nDCG": "ndcg",
    "RR": "mrr",
}

# ir-measures family (lower case) -> (ranx family, whether a cutoff is required). P and R
# need one: ranx's cutoff-less precision and recall are over the whole ranking, which is not
# what ir-measures' P and R mean.
_FAMILIES: dict[str, tuple[str, bool]] = {
    "ndcg": ("ndcg", False),
    "rr": ("mrr", False),
    "mrr": ("mrr", False),
    "r": ("recall", True),
    "recall": ("recall", True),
    "p": ("precision", True),
    "ap": ("map", False),
    "map": ("map", False),
    "success": ("hit_rate", True),
}
_MEASURE = re.compile(r"(?P<family>[A-Za-z]+)(?:@(?P<k>[0-9]+))?")


def to_ranx(measure: str) -> str:
    """ranx's name for an ir-measures-style measure: nDCG, RR, R@k, P@k, AP, Success@k.

    ir-measures' aliases MRR, Recall and MAP are accepted too; the family name is matched
    case-insensitively. ``"nDCG@10"`` -> ``"ndcg@10"``, ``"RR@10"`` -> ``"mrr@10"``,
    ``"R@100"`` -> ``"recall@100"``, ``"AP"`` -> ``"map"``, ``"Success@5"`` -> ``"hit_rate@5"``.
    Measures with parameters (``RR(rel=2)@10``) are not supported.
    """
    if measure in RANX_NAMES:
        return RANX_NAMES[measure]
    match = _MEASURE.fullmatch(measure.strip())
    family = _FAMILIES.get(match["family"].lower()) if match else None
    if match is None or family is None:
        raise ConfigError(
            f"unknown measure {measure!r}: use nDCG@k, RR@k, R@k, P@k, AP or Success@k (e.g. "
            f"{', '.join(MEASURES)})"
        )
    name, needs_cutoff = family
    k = match["k"]
    if k is not None and int(k) < 1:
        raise ConfigError(f"measure {measure!r}: the cutoff must be a positive integer")
    if k is None:
        if needs_cutoff:
            raise ConfigError(f"measure {measure!r} needs a cutoff, e.g. {measure}@10")
        return name
    return f"{name}@{int(k)}"


def _ranked(run: Run, queries: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` for the ``queries`` the run has hits for, ties broken."""
    return {q: dict(ordered(run[q])) for q in queries if q in run and len(run[q]) > 0}


class _Ids:
    """Document ids renamed to fixed-width strings for ranx.

    ranx stores a query's document ids in a NumPy array as wide as the longest id, and numba
    compiles its kernels anew (seconds) for every width it meets; ids of one fixed width are
    compiled for once. ranx only matches ids (by hash), so renaming them changes nothing else.
    """

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def __call__(self, doc_id: str) -> str:
        new = self._ids.get(doc_id)
        if new is None:
            new = self._ids[doc_id] = f"{len(self._ids):016x}"
        return new

    def rename(self, ranked: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        return {q: {self(d): v for d, v in docs.items()} for q, docs in ranked.items()}


def _p_value(value: Any) -> float:
    p = float(value)
    return 1.0 if math.isnan(p) else p


def compare_runs(
    a: Run,
    b: Run,
    qrels: Judgments,
    *,
    labels: tuple[str, str] = ("A", "B"),
    measures: Sequence[str] = MEASURES,
    test: str = "student",
    alpha: float = 0.05,
    n_permutations: int = 10_000,
) -> dict[str, Any]:
    """Compare run ``b`` with run ``a`` on ``qrels``, measure by measure, with ``test``.

    Returns ``{"a": label, "b": label, "test": test, "alpha": alpha, "queries": n,
    "metrics": {measure: {"a": mean_a, "b": mean_b, "diff": mean_b - mean_a,
    "p_value": p, "significant": p < alpha}}}``, the means taken over the ``n`` queries
    with a relevant judgment (a query a run lacks scores 0 for it: see the module's notes).

    A p-value the test cannot compute (scipy's t-test gives NaN when every per-query
    difference is 0, e.g. identical runs) is reported as 1.0: no evidence of a difference.
    ``n_permutations`` is used by the ``"fisher"`` test only; ranx's randomization test is not
    reproducible (its seed does not reach numba's worker threads, ranx issue #70), so its
    p-value varies by about ``sqrt(p * (1 - p) / n_permutations)`` between calls.

    Raises :class:`ConfigError` for an unknown test or measure, an ``alpha`` outside (0, 1),
    a run with no hits, qrels with no relevant judgment, or a run with no hits for any judged
    query (its query ids likely do not match the qrels').
    """
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}: use one of {', '.join(TESTS)}")
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not 0.0 < float(alpha) < 1.0
    ):
        raise ConfigError(f"alpha must be a number between 0 and 1 (exclusive), got {alpha!r}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int):
        raise ConfigError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    if n_permutations < 1:
        raise ConfigError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    if isinstance(measures, str):
        measures = (measures,)
    if not measures:
        raise ConfigError("no measures to compare")
    names = {m: to_ranx(m) for m in measures}
    label_a, label_b = labels
    for label, run in ((label_a, a), (label_b, b)):
        if not any(len(hits) > 0 for hits in run.values()):
            raise ConfigError(f"run {label!r} is empty: it has no hits")

    queries = judged_queries(qrels)
    if not queries:
        raise ConfigError("the qrels have no relevant judgment (relevance > 0): nothing to compare")
    ranked_a, ranked_b = _ranked(a, queries), _ranked(b, queries)
    for label, ranked in ((label_a, ranked_a), (label_b, ranked_b)):
        if not ranked:
            raise ConfigError(
                f"run {label!r} has no hits for any of the {len(queries)} judged queries: "
                f"do its query ids match the qrels'?"
            )
    ids = _Ids()
    relevant = ids.rename({q: {d: int(r) for d, r in qrels[q].items() if r > 0} for q in queries})
    ranked_a, ranked_b = ids.rename(ranked_a), ids.rename(ranked_b)

    metrics = list(dict.fromkeys(names.values()))
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's compile-time warnings, scipy's on NaN
        import numba
        import ranx  # type: ignore[import-untyped]

        threads = numba.get_num_threads()  # ranx sets it to 1 for fewer than 10 queries
        try:
            ranx_qrels = ranx.Qrels(relevant)
            # Internal names: ranx keys its results by run name, so equal labels must not clash.
            run_a = ranx.Run(ranked_a, name="a").make_comparable(ranx_qrels)
            run_b = ranx.Run(ranked_b, name="b").make_comparable(ranx_qrels)
            report = ranx.compare(
                qrels=ranx_qrels,
                runs=[run_a, run_b],
                metrics=metrics,
                stat_test=test,
                n_permutations=n_permutations,
                max_p=float(alpha),
            )
        finally:
            numba.set_num_threads(threads)

    out: dict[str, dict[str, Any]] = {}
    for measure, name in names.items():
        mean_a = float(report.results["a"][name])
        mean_b = float(report.results["b"][name])
        p = _p_value(report.comparisons[("a", "b")][name]["p_value"])
        out[measure] = {
            "a": mean_a,
            "b": mean_b,
            "diff": mean_b - mean_a,
            "p_value": p,
            "significant": p < alpha,
        }
    return {
        "a": label_a,
        "b": label_b,
        "test": test,
        "alpha": alpha,
        "queries": len(queries),
        "metrics": out,
    }


def compare_files(
    path_a: str | Path, path_b: str | Path, qrels: Judgments, **kw: Any
) -> dict[str, Any]:
    """:func:`compare_runs` on two TREC run files; ``labels`` default to the files' names."""
    kw.setdefault("labels", (Path(path_a).name, Path(path_b).name))
    return compare_runs(read_trec_run(path_a), read_trec_run(path_b), qrels, **kw)
