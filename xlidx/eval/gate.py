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
from typing import Any

from xlidx.errors import ConfigError, XlidxError

EXIT_REFUSED = 3


class GateRefused(XlidxError):
    """``index migrate --gate`` measured a regression beyond ``--max-drop``: the alias stays."""

    exit_code = EXIT_REFUSED


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
class GateSpec:
    """What ``index migrate --gate`` checks: queries and qrels files, the mode, the metric."""

    queries: Any  # list[EvalQuery]
    qrels: Any  # Qrels
    metric: str = "nDCG@10"
    max_drop: float = 0.01
    mode: str = "hybrid"
    device: str = "auto"


def canonical_metric(metric: str) -> str:
    """ir-measures' own name of ``metric`` (``MRR@10`` → ``RR@10``), the key its results
    carry; a one-line ConfigError for an unknown measure."""
    from xlidx.eval.metrics import _parse

    return str(_parse([metric])[0])


def measures_for(metric: str) -> tuple[str, ...]:
    from xlidx.eval.metrics import MEASURES

    return MEASURES if metric in MEASURES else (*MEASURES, metric)


def run_gate(
    backend: Any, spec: GateSpec, old_index: str, new_index: str
) -> tuple[GateResult, list[Any]]:
    """Evaluate both versions with the same settings; the result and both mode reports."""
    from xlidx.eval.compare import compare_runs
    from xlidx.eval.harness import EvalOptions, run_eval
    from xlidx.indices.manage import version_state
    from xlidx.search import Searcher

    measures = measures_for(spec.metric)
    options = EvalOptions(modes=(spec.mode,), measures=measures)
    reports = []
    for index in (old_index, new_index):
        st = version_state(backend, index)
        searcher = Searcher(backend, st.alias, state=st, device=spec.device)
        reports.append(run_eval(searcher, spec.queries, spec.qrels, options)[0])
    old, new = reports
    try:
        comparison: dict[str, Any] | None = compare_runs(
            old.run, new.run, spec.qrels.judgments, labels=(old_index, new_index),
            measures=measures,
        )  # fmt: skip
    except ConfigError:  # a version with no hit for any judged query: the threshold decides
        comparison = None
    result = GateResult(
        metric=spec.metric,
        max_drop=spec.max_drop,
        old_index=old_index,
        new_index=new_index,
        old=old.metrics,
        new=new.metrics,
        comparison=comparison,
    )
    return result, reports
