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
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xlidx.cli._state import err, out, state
from xlidx.cli.ingest import split_csv
from xlidx.errors import ConfigError

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


def parse_modes(value: str) -> tuple[str, ...]:
    from xlidx.query.plan import MODES

    modes = tuple(dict.fromkeys(m.lower() for m in split_csv(value)))
    if not modes:
        raise ConfigError("--mode is empty: give hybrid, bm25 and/or knn")
    for m in modes:
        if m not in MODES:
            raise ConfigError(f"unknown mode {m!r}: expected {', '.join(MODES)}")
    return modes


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
    from xlidx.eval.compare import TESTS
    from xlidx.eval.data import read_qrels, read_queries
    from xlidx.eval.harness import EvalOptions, run_eval
    from xlidx.search import Searcher

    sides = parse_compare(compare) if compare is not None else None
    if test not in TESTS:
        raise ConfigError(f"unknown --test {test!r}: expected {', '.join(TESTS)}")
    if test != "student" and sides is None:
        raise ConfigError("--test applies with --compare A,B")
    if sides is not None and all(kind == "file" for kind, _ in sides) and not index:
        if qrels is None:
            raise ConfigError("--compare RUN_A,RUN_B needs --qrels FILE")
        _compare_files_only(sides, read_qrels(qrels), test, as_json, report_path)
        return
    if queries is None or qrels is None:
        raise ConfigError("--queries FILE and --qrels FILE are required")
    if not index:
        raise ConfigError("--index NAME is required")
    if fusion is not None and fusion not in ("minmax", "rrf"):
        raise ConfigError(f"unknown fusion {fusion!r}: expected minmax or rrf")
    modes = parse_modes(mode)
    if sides is not None:  # modes named by --compare are evaluated too
        modes = tuple(dict.fromkeys([*modes, *(v for kind, v in sides if kind == "mode")]))
    options = EvalOptions(
        modes=modes,
        k=k,
        translate=translate_query,
        balance=balance,
        centering=centering,
        fusion=fusion,
        weights=parse_weights(weights),
        candidates=candidates,
        run_prefix=run_out,
    )
    query_list = read_queries(queries, queries_format)
    judgments = read_qrels(qrels)

    searcher = Searcher(state(ctx).backend(), index, device=device)
    show = not no_progress and not as_json and err.is_terminal
    with Progress(
        TextColumn("[bold]{task.fields[stage]:<9}"),
        BarColumn(),
        TextColumn("{task.completed:>6,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=len(query_list), stage="starting")

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, stage=stage)

        mode_reports = run_eval(searcher, query_list, judgments, options, progress=progress)
        others = {
            value: run_eval(
                Searcher(searcher.backend, value, device=device),
                query_list,
                judgments,
                replace(options, modes=options.modes[:1], run_prefix=None),
                progress=progress,
            )[0]
            for kind, value in (sides or [])
            if kind == "index"
        }
    reports = [r.to_json() for r in mode_reports]
    comparison = None
    if sides is not None:
        from xlidx.eval.compare import compare_runs

        runs = [_side_run(side, mode_reports, others) for side in sides]
        comparison = compare_runs(
            runs[0],
            runs[1],
            judgments.judgments,
            labels=(_label(sides[0], options), _label(sides[1], options)),
            measures=options.measures,
            test=test,
        )
    if report_path is not None:
        from xlidx.eval.reporting import index_settings, report_data, write_report

        extra = list(others.values())
        data = report_data(
            f"xlidx eval: {index}",
            [*mode_reports, *extra],
            query_list,
            judgments,
            settings={
                **index_settings(searcher),
                "queries": str(queries),
                "qrels": str(qrels),
                "k": k,
                "fusion": fusion or "minmax (default)",
                "weights": weights or "xlidx decides per query",
                "balance": balance,
                "centering": centering,
                "translate query": translate_query,
                **{
                    f"{m} fusion": r["fusion"]
                    for r in reports
                    if (m := r["mode"]) and r.get("fusion")
                },
            },
            labels=[
                *(r.mode for r in mode_reports),
                *(f"{e.mode} · {n}" for n, e in others.items()),
            ],
            comparison=comparison,
        )
        written = write_report(report_path, data)
        if not as_json:
            err.print(f"report: {written}")
    if as_json:
        if comparison is not None:
            out.print_json(json.dumps({"reports": reports, "comparison": comparison}))
        else:
            out.print_json(json.dumps(reports))
        return
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
    if comparison is not None:
        out.print(_comparison_table(comparison))


Side = tuple[str, str]  # ("mode" | "index" | "file", value)


def parse_compare(value: str) -> tuple[Side, Side]:
    """``A,B`` → two sides: a mode name, an existing file (a TREC run), else an index."""
    from xlidx.query.plan import MODES

    parts = split_csv(value)
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ConfigError(f"--compare takes two different runs A,B, got {value!r}")
    sides: list[Side] = []
    for p in parts:
        if p in MODES:
            sides.append(("mode", p))
        elif Path(p).expanduser().is_file():
            sides.append(("file", str(Path(p).expanduser())))
        elif p.endswith((".trec", ".run", ".txt", ".tsv")):
            raise ConfigError(f"--compare: run file not found: {p}")
        else:
            sides.append(("index", p))
    return sides[0], sides[1]


def _side_run(side: Side, reports: Any, others: dict[str, Any]) -> Any:
    from xlidx.eval.metrics import read_trec_run

    kind, value = side
    if kind == "mode":
        return next(r.run for r in reports if r.mode == value)
    if kind == "index":
        return others[value].run
    return read_trec_run(value)


def _label(side: Side, options: Any) -> str:
    kind, value = side
    if kind == "index":
        return f"{options.modes[0]} · {value}"
    return Path(value).name if kind == "file" else value


def _compare_files_only(
    sides: tuple[Side, Side], judgments: Any, test: str, as_json: bool, report_path: Path | None
) -> None:
    """``--compare A.trec,B.trec`` without an index: the comparison alone."""
    from xlidx.eval.compare import compare_runs
    from xlidx.eval.metrics import read_trec_run

    a, b = (read_trec_run(v) for _k, v in sides)
    comparison = compare_runs(
        a, b, judgments.judgments, labels=(_label(sides[0], None), _label(sides[1], None)),
        test=test,
    )  # fmt: skip
    if report_path is not None:
        from xlidx.eval.reporting import report_data, write_report

        data = report_data(
            "xlidx eval: run comparison",
            [],
            [],
            judgments,
            settings={"run A": sides[0][1], "run B": sides[1][1], "test": test},
            comparison=comparison,
        )
        written = write_report(report_path, data)
        if not as_json:
            err.print(f"report: {written}")
    if as_json:
        out.print_json(json.dumps({"reports": [], "comparison": comparison}))
        return
    out.print(_comparison_table(comparison))


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
