"""From evaluation results to the HTML report's data, and the file on disk (the I/O edge of
:mod:`xlidx.eval.report`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xlidx.errors import ConfigError
from xlidx.eval.data import EvalQuery, Qrels
from xlidx.eval.harness import ModeReport, worst_queries
from xlidx.eval.report import ReportData, render_report

WORST = 10


def report_data(
    title: str,
    reports: Sequence[ModeReport],
    queries: Sequence[EvalQuery],
    qrels: Qrels,
    *,
    settings: Mapping[str, Any],
    labels: Sequence[str] | None = None,
    comparison: dict[str, Any] | None = None,
    main_metric: str = "nDCG@10",
) -> ReportData:
    """``labels`` name the reports (default: their modes), e.g. ``hybrid · docs-v1``."""
    names = list(labels) if labels is not None else [r.mode for r in reports]
    modes = [{**r.to_json(), "mode": name} for r, name in zip(reports, names, strict=True)]
    worst = {
        name: worst_queries(r, queries, qrels, measure=main_metric, n=WORST)
        for r, name in zip(reports, names, strict=True)
    }
    return ReportData(
        title=title,
        settings=dict(settings),
        modes=modes,
        worst=worst,
        comparison=comparison,
        main_metric=main_metric,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def write_report(path: str | Path, data: ReportData) -> Path:
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_report(data), encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot write the report to {target}: {detail}") from None
    return target


def index_settings(searcher: Any) -> dict[str, Any]:
    """What produced a run, from the index's ``_meta``: version, model, languages."""
    st = searcher.state()
    x = st.xlidx_meta
    emb = x.get("embedding", {})
    return {
        "index": st.alias,
        "version": st.index,
        "model": emb.get("model"),
        "dimension": emb.get("dimension"),
        "languages": ", ".join(x.get("languages") or []) or "all",
        "translated to": ", ".join(x.get("translate_to") or []) or "none",
        "index centering": (
            ("on" if cal.get("centering") else "off") + f" ({cal.get('mode')}): {cal.get('reason')}"
            if isinstance(cal := x.get("calibration"), Mapping)
            else "not calibrated"
        ),
    }
