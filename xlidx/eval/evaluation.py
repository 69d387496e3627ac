"""What an evaluation returns: one report per mode, and a paired comparison when one was asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlidx.eval.harness import ModeReport


@dataclass
class Evaluation:
    """The result of ``Index.evaluate`` (or of comparing two run files).

    ``reports``: the index's reports, one per mode in the order asked; ``others``: the report
    of each other index a comparison named (in the first mode), by index name; ``comparison``:
    the paired test (:func:`~xlidx.eval.compare.compare_runs`); ``report_path``: the HTML
    report written, if one was asked.
    """

    reports: list[ModeReport] = field(default_factory=list)
    others: dict[str, ModeReport] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    report_path: Path | None = None

    def mode_reports(self) -> list[dict[str, Any]]:
        """The index's reports as JSON objects, one per mode."""
        return [r.to_json() for r in self.reports]

    def to_json(self) -> list[dict[str, Any]] | dict[str, Any]:
        """What ``xlidx eval --json`` prints: the list of mode reports, or, with a comparison,
        ``{"reports": [...], "comparison": {...}}``."""
        if self.comparison is not None:
            return {"reports": self.mode_reports(), "comparison": self.comparison}
        return self.mode_reports()
