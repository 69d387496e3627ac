"""The migration gate: is a new index version no worse than the old one on the user's own
judgments?

Both versions are evaluated with the same queries, qrels, mode and settings
(:func:`~xlidx.eval.harness.run_eval`); the gate passes when the chosen metric drops by no more
than ``max_drop`` (absolute). The paired significance test (ranx, :mod:`xlidx.eval.compare`)
is reported next to the decision; the decision itself is the threshold, so that a user can
say exactly how much they accept to lose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xlidx.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from xlidx.eval.data import EvalQuery, Qrels
    from xlidx.eval.harness import ModeReport


@dataclass(frozen=True)
class GateResult:
    metric: str
    max_drop: float
    old_index: str
    new_index: str
    old: dict[str, float]  # metrics of the old version
    new: dict[str, float]  # metrics of the new version
    comparison: dict[str, Any] | None = None

    @property
    def drop(self) -> float:
        """How much the metric fell (negative: it rose)."""
        return self.old.get(self.metric, 0.0) - self.new.get(self.metric, 0.0)

    @property
    def passed(self) -> bool:
        return not math.isnan(self.drop) and self.drop <= self.max_drop + 1e-12

    def reason(self) -> str:
        """One line for a person."""
        o, n = self.old.get(self.metric, 0.0), self.new.get(self.metric, 0.0)
        p = ""
        if self.comparison is not None:
            m = self.comparison.get("metrics", {}).get(self.metric, {})
            if "p_value" in m:
                p = f", paired {self.comparison.get('test', 'test')} p={m['p_value']:.3g}"
        verdict = "within" if self.passed else "more than"
        return (
            f"{self.metric} {o:.4f} -> {n:.4f} ({n - o:+.4f}{p}): {verdict} --max-drop "
            f"{self.max_drop:g}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "max_drop": self.max_drop,
            "drop": round(self.drop, 6),
            "passed": self.passed,
            "old": {"index": self.old_index, "metrics": self.old},
            "new": {"index": self.new_index, "metrics": self.new},
            "comparison": self.comparison,
            "reason": self.reason(),
        }


@dataclass(frozen=True)
class Gate:
    """What a gated migration checks: the user's queries and judgments, the measure that
    decides, the largest accepted drop of it (absolute), the search mode, and the device
    the queries are encoded on. The metric is kept under ir-measures' own name."""

    queries: Sequence[EvalQuery]
    qrels: Qrels
    metric: str = "nDCG@10"
    max_drop: float = 0.01
    mode: str = "hybrid"
    device: str = "auto"

    def __post_init__(self) -> None:
        check_gate_mode(self.mode)
        if not self.max_drop >= 0:
            raise ConfigError(f"--max-drop must be 0 or more, got {self.max_drop!r}")
        object.__setattr__(self, "metric", canonical_metric(self.metric))

    @classmethod
    def from_files(
        cls,
        queries_path: str | Path,
        qrels_path: str | Path,
        metric: str = "nDCG@10",
        max_drop: float = 0.01,
        mode: str = "hybrid",
        device: str = "auto",
    ) -> Gate:
        """Queries (TSV or JSONL, as for ``xlidx eval``) and TREC qrels read and checked
        against each other, before anything is migrated."""
        from xlidx.eval.data import check_qrels, read_qrels, read_queries

        check_gate_mode(mode)  # the settings first, then the files
        metric = canonical_metric(metric)
        queries = read_queries(queries_path)
        qrels = read_qrels(qrels_path)
        check_qrels(queries, qrels)
        return cls(queries, qrels, metric, max_drop, mode, device)


def check_gate_mode(mode: str) -> str:
    """``mode`` if the gate can search with it, else a one-line ConfigError."""
    from xlidx.query.plan import MODES

    if mode not in MODES:
        raise ConfigError(f"unknown --gate-mode {mode!r}: expected {', '.join(MODES)}")
    return mode


def canonical_metric(metric: str) -> str:
    """ir-measures' own name of ``metric`` (``MRR@10`` → ``RR@10``), the key its results
    carry; a one-line ConfigError for an unknown measure."""
    from xlidx.eval.metrics import _parse

    return str(_parse([metric])[0])


def measures_for(metric: str) -> tuple[str, ...]:
    from xlidx.eval.metrics import MEASURES

    return MEASURES if metric in MEASURES else (*MEASURES, metric)


def run_gate(
    backend: Any, gate: Gate, old_index: str, new_index: str
) -> tuple[GateResult, list[ModeReport]]:
    """Evaluate both versions with the same settings; the result and both mode reports."""
    from xlidx.eval.compare import compare_runs
    from xlidx.eval.harness import EvalOptions, run_eval
    from xlidx.indices.manage import version_state
    from xlidx.search import Searcher

    measures = measures_for(gate.metric)
    options = EvalOptions(modes=(gate.mode,), measures=measures)
    reports = []
    for index in (old_index, new_index):
        st = version_state(backend, index)
        searcher = Searcher(backend, st.alias, state=st, device=gate.device)
        reports.append(run_eval(searcher, gate.queries, gate.qrels, options)[0])
    old, new = reports
    try:
        comparison: dict[str, Any] | None = compare_runs(
            old.run, new.run, gate.qrels.judgments, labels=(old_index, new_index),
            measures=measures,
        )  # fmt: skip
    except ConfigError:  # a version with no hit for any judged query: the threshold decides
        comparison = None
    result = GateResult(
        metric=gate.metric,
        max_drop=gate.max_drop,
        old_index=old_index,
        new_index=new_index,
        old=old.metrics,
        new=new.metrics,
        comparison=comparison,
    )
    return result, reports
