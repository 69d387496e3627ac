"""``xlidx eval``: retrieval quality of an xlidx index on queries with relevance judgments.

Runs every query in each ``--mode`` and prints nDCG@10, RR@10, R@1 and R@100 (ir-measures),
the same per document language, and the language share of the top-10 hits against that of
the relevant documents. ``--json`` prints a JSON list with one object per mode, in
``--mode`` order (a list even for one mode)::

    [{"mode": "hybrid",
      "metrics": {"nDCG@10": 0.91, "RR@10": 0.89, "R@1": 0.84, "R@100": 0.99},
      "per_language": {"fr": {"queries": 1000, "metrics": {…same keys…}}},
      "language_share": {"en": {"queries": 1000, "depth": 10,
                                "hits": {"en": 0.1, "fr": 0.9}, "relevant": {"fr": 1.0}}},
      "queries": 1000, "evaluated": 1000,
      "latency_ms": {"p50": 9.1, "p95": 14.0, "encode_per_query": 8.7},
      "run_file": "runs/x.hybrid.trec" or null,
      "fusion": {"method": "minmax", "balance": false, "weights": [[0.0, 0.5]],
                 "fused_on": ["client"]}},          # hybrid only
     …]

With ``--compare A,B`` the JSON becomes ``{"reports": [...], "comparison": {"a", "b",
"test", "alpha", "queries", "metrics": {measure: {"a", "b", "diff", "p_value",
"significant"}}}}``. ``--report FILE.html`` writes the self-contained HTML report
(:mod:`xlidx.eval.report`).

Exit codes: 0 done; 1 an error (one line on stderr: unreadable or malformed queries/qrels,
unknown index, cluster unreachable); 2 a bad flag.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xlidx.cli._state import err, out
from xlidx.cli.options import split_csv
from xlidx.errors import ConfigError

if TYPE_CHECKING:
    from xlidx.eval.evaluation import Evaluation

DEFAULT_MODES = "hybrid,bm25,knn"


def parse_weights(value: str | None) -> tuple[float, float] | None:
    """``"0.3,0.7"`` → ``(0.3, 0.7)`` (BM25, kNN)."""
    if value is None:
        return None
    parts = split_csv(value)
    try:
        nums = tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--weights must be two numbers BM25,kNN, got {value!r}") from None
    if len(nums) != 2:
        raise ConfigError(f"--weights must be two numbers BM25,kNN, got {value!r}")
    return (nums[0], nums[1])


def _metrics_table(reports: list[dict[str, Any]]) -> Table:
    from xlidx.eval.metrics import MEASURES

    table = Table(title="retrieval quality", title_justify="left")
    for col in ("mode", *MEASURES, "queries", "p50 ms"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for r in reports:
        table.add_row(
            r["mode"],
            *(f"{r['metrics'][m]:.4f}" for m in MEASURES),
            f"{r['evaluated']}/{r['queries']}",
            f"{r['latency_ms']['p50']:.1f}",
        )
    return table


def _per_language_table(reports: list[dict[str, Any]]) -> Table:
    from xlidx.eval.metrics import MEASURES

    table = Table(title="by document language", title_justify="left")
    for col in ("mode", "doc lang", *MEASURES, "queries"):
        table.add_column(col, justify="left" if col in ("mode", "doc lang") else "right")
    for r in reports:
        for lang, v in r["per_language"].items():
            table.add_row(
                r["mode"], lang, *(f"{v['metrics'][m]:.4f}" for m in MEASURES), str(v["queries"])
            )
    return table


def _share_table(reports: list[dict[str, Any]]) -> Table:
    table = Table(title="language share: top-10 hits vs relevant documents", title_justify="left")
    for col in ("mode", "query lang", "doc lang", "hits", "relevant"):
        table.add_column(col, justify="left" if col != "hits" and col != "relevant" else "right")
    for r in reports:
        for ql, v in r["language_share"].items():
            for dl in sorted(set(v["hits"]) | set(v["relevant"])):
                table.add_row(
                    r["mode"],
                    ql,
                    dl,
                    f"{v['hits'].get(dl, 0.0):.1%}",
                    f"{v['relevant'].get(dl, 0.0):.1%}",
                )
    return table


def eval_command(
    ctx: typer.Context,
    index: Annotated[str, typer.Option("--index", help="The xlidx index (an alias).")] = "",
    queries: Annotated[
        Path | None,
        typer.Option(
            "--queries",
            help="Queries: TSV qid<TAB>text[<TAB>lang], or JSONL {qid, text, lang?}.",
            show_default=False,
        ),
    ] = None,
    qrels: Annotated[
        Path | None,
        typer.Option(
            "--qrels", help="Relevance judgments, TREC format: qid 0 docid rel.", show_default=False
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="Comma-separated modes: hybrid, bm25, knn.")
    ] = DEFAULT_MODES,
    k: Annotated[
        int, typer.Option("--k", help="Hits per query (R@100 needs 100).", min=1, max=1000)
    ] = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, one object per mode.")
    ] = False,
    run_out: Annotated[
        str | None,
        typer.Option(
            "--run-out",
            help="Write TREC run files PREFIX.<mode>.trec (given a directory: "
            "DIR/<index>.<mode>.trec).",
            show_default=False,
        ),
    ] = None,
    translate_query: Annotated[
        bool,
        typer.Option(
            "--translate-query", help="Translate each query into the index's languages (BM25)."
        ),
    ] = False,
    balance: Annotated[
        bool, typer.Option("--balance", help="Per-language normalization before hybrid fusion.")
    ] = False,
    centering: Annotated[
        bool,
        typer.Option(
            help="Center query vectors where the index is calibrated to "
            "(--no-centering: the model's raw query vectors).",
        ),
    ] = True,
    fusion: Annotated[
        str | None,
        typer.Option("--fusion", help="Hybrid fusion: minmax or rrf.", show_default=False),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="Fusion weights BM25,kNN, e.g. 0.3,0.7 (default: xlidx decides per query).",
            show_default=False,
        ),
    ] = None,
    candidates: Annotated[
        int | None,
        typer.Option(
            "--candidates",
            help="Hits per side before fusion (default 100).",
            min=1,
            max=10_000,
            show_default=False,
        ),
    ] = None,
    queries_format: Annotated[
        str | None,
        typer.Option(
            "--queries-format", help="tsv or jsonl (default: from the name).", show_default=False
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="Query encoder device: cuda, mps, cpu, or auto.")
    ] = "auto",
    report_path: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write a self-contained HTML report (charts, per-language metrics, language "
            "heatmaps, latency, worst queries; opens offline).",
            show_default=False,
        ),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare",
            help="Compare two runs with a paired significance test: A,B where each is a mode "
            "of this run (hybrid, bm25, knn), another xlidx index (evaluated with the same "
            "settings in the first --mode), or a saved TREC run file.",
            show_default=False,
        ),
    ] = None,
    test: Annotated[
        str,
        typer.Option(
            "--test", help="With --compare: student (paired t-test), fisher or tukey (ranx)."
        ),
    ] = "student",
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Measure retrieval quality (nDCG@10, RR@10, R@1, R@100) on queries and qrels."""
    from xlidx.cli.cluster import connect
    from xlidx.eval.choices import check_fusion, check_modes, check_test, parse_compare
    from xlidx.workflows.evaluate import compare_run_files

    sides = parse_compare(compare) if compare is not None else None
    check_test(test, comparing=sides is not None)
    if sides is not None and all(s.kind == "file" for s in sides) and not index:
        if qrels is None:
            raise ConfigError("--compare RUN_A,RUN_B needs --qrels FILE")
        a, b = sides
        _render(compare_run_files(a.value, b.value, qrels, test=test, report=report_path), as_json)
        return
    if queries is None or qrels is None:
        raise ConfigError("--queries FILE and --qrels FILE are required")
    if not index:
        raise ConfigError("--index NAME is required")
    check_fusion(fusion)
    modes = check_modes(split_csv(mode))
    pair = parse_weights(weights)
    target = connect(ctx).index(index)
    with _progress_bar(show=not no_progress and not as_json and err.is_terminal) as progress:
        result = target.evaluate(
            queries, qrels, modes=modes, k=k, translate=translate_query, balance=balance,
            centering=centering, fusion=fusion, weights=pair, candidates=candidates,
            run_prefix=run_out, queries_format=queries_format, device=device,
            compare=sides, test=test, report=report_path, progress=progress,
        )  # fmt: skip
    _render(result, as_json)


@contextmanager
def _progress_bar(*, show: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr (when ``show``), and the callback that moves it."""
    with Progress(
        TextColumn("[bold]{task.fields[stage]:<9}"),
        BarColumn(),
        TextColumn("{task.completed:>6,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=1, stage="starting")

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, stage=stage)

        yield progress


def _render(result: Evaluation, as_json: bool) -> None:
    if result.report_path is not None and not as_json:
        err.print(f"report: {result.report_path}")
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    reports = result.mode_reports()
    if reports:
        out.print(_metrics_table(reports))
        out.print(_per_language_table(reports))
        out.print(_share_table(reports))
    for r in reports:
        if r.get("fusion"):
            f = r["fusion"]
            gated = bool(f["weights"]) and all(w[0] == 0.0 for w in f["weights"])
            out.print(
                f"hybrid fusion: {f['method']}, weights (BM25, kNN) {f['weights']}, "
                + ("BM25 gated off (kNN only)" if gated else f"fused on {', '.join(f['fused_on'])}")
                + (", balanced" if f["balance"] else "")
            )
        if r["run_file"]:
            out.print(f"run file ({r['mode']}): {r['run_file']}")
    if result.comparison is not None:
        out.print(_comparison_table(result.comparison))


def _comparison_table(comparison: dict[str, Any]) -> Table:
    table = Table(
        title=f"{comparison['b']} vs {comparison['a']} ({comparison['test']} test, "
        f"{comparison['queries']} queries, alpha {comparison['alpha']:g})",
        title_justify="left",
    )
    for col in ("measure", "A", "B", "B - A", "p-value", ""):
        table.add_column(col, justify="left" if col in ("measure", "") else "right")
    for m, v in comparison["metrics"].items():
        table.add_row(
            m,
            f"{v['a']:.4f}",
            f"{v['b']:.4f}",
            f"{v['diff']:+.4f}",
            f"{v['p_value']:.3g}",
            "significant" if v["significant"] else "",
        )
    return table
