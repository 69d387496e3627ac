"""Evaluate an index on queries with relevance judgments, compare two runs with a paired test,
and write the HTML report (the workflow behind ``xlidx eval``).

Every mode asked (and every mode a comparison names) is run by
:func:`~xlidx.eval.harness.run_eval`; another index named by a comparison is evaluated with the
same settings in the first mode; a saved TREC run file is read as it is. Nothing here prints:
progress goes to the ``progress(stage, done, total)`` callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlidx.eval.choices import Side, Sides, as_sides, check_fusion, check_modes, check_test
from xlidx.eval.data import EvalQuery, Qrels, read_qrels, read_queries
from xlidx.eval.evaluation import Evaluation
from xlidx.eval.harness import EvalOptions, run_eval
from xlidx.query.plan import MODES

if TYPE_CHECKING:
    from xlidx.eval.compare import Run
    from xlidx.search import Searcher
    from xlidx.workflows.index import Index

Progress = Callable[[str, int, int], None]
QueriesIn = str | Path | Sequence[EvalQuery]
QrelsIn = str | Path | Qrels | Mapping[str, Mapping[str, int]]
Compare = str | Sides | Sequence[Side | str]


def _quiet(_stage: str, _done: int, _total: int) -> None:
    return None


def load_queries(queries: QueriesIn, fmt: str | None = None) -> list[EvalQuery]:
    """A queries file (TSV or JSONL), or the queries themselves."""
    if isinstance(queries, (str, Path)):
        return read_queries(queries, fmt)
    return list(queries)


def load_qrels(qrels: QrelsIn) -> Qrels:
    """A TREC qrels file, a :class:`Qrels`, or ``{qid: {docid: relevance}}``."""
    if isinstance(qrels, (str, Path)):
        return read_qrels(qrels)
    return qrels if isinstance(qrels, Qrels) else Qrels(judgments=qrels)


def evaluate(
    index: Index,
    queries: QueriesIn,
    qrels: QrelsIn,
    *,
    modes: str | Sequence[str] = MODES,
    k: int = 100,
    translate: bool = False,
    balance: bool = False,
    centering: bool = True,
    fusion: str | None = None,
    weights: tuple[float, float] | None = None,
    candidates: int | None = None,
    run_prefix: str | Path | None = None,
    queries_format: str | None = None,
    device: str = "auto",
    embedder: Any = None,
    compare: Compare | None = None,
    test: str = "student",
    report: str | Path | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate ``index`` in each of ``modes`` (see :meth:`xlidx.Index.evaluate`)."""
    sides = as_sides(compare) if compare is not None else None
    check_test(test, comparing=sides is not None)
    check_fusion(fusion)
    named = [s.value for s in sides or () if s.kind == "mode"]  # evaluated too
    options = EvalOptions(
        modes=tuple(dict.fromkeys([*check_modes(modes), *named])),
        k=k,
        translate=translate,
        balance=balance,
        centering=centering,
        fusion=fusion,
        weights=(float(weights[0]), float(weights[1])) if weights is not None else None,
        candidates=candidates,
        run_prefix=run_prefix,
    )
    query_list = load_queries(queries, queries_format)
    judgments = load_qrels(qrels)
    tick = progress or _quiet
    tick("starting", 0, len(query_list))
    from xlidx.search import Searcher

    searcher = Searcher(index.backend, index.name, device=device, embedder=embedder)
    reports = run_eval(searcher, query_list, judgments, options, progress=tick)
    single = replace(options, modes=options.modes[:1], run_prefix=None)
    others = {
        s.value: run_eval(
            # another index loads its own model (it may not be this one's)
            Searcher(index.backend, s.value, device=device),
            query_list, judgments, single, progress=tick,
        )[0]
        for s in sides or ()
        if s.kind == "index"
    }  # fmt: skip
    result = Evaluation(reports, others)
    if sides is not None:
        from xlidx.eval.compare import compare_runs

        first = options.modes[0]
        result.comparison = compare_runs(
            _run_of(sides[0], result), _run_of(sides[1], result), judgments.judgments,
            labels=(sides[0].label(first), sides[1].label(first)),
            measures=options.measures, test=test,
        )  # fmt: skip
    if report is not None:
        settings = {
            **_run_settings(searcher, queries, qrels, options),
            **{f"{r.mode} fusion": r.fusion for r in reports if r.fusion},
        }
        result.report_path = _write(
            report, f"xlidx eval: {index.name}", result, query_list, judgments, settings
        )
    return result


def compare_run_files(
    a: str | Path,
    b: str | Path,
    qrels: QrelsIn,
    *,
    test: str = "student",
    report: str | Path | None = None,
) -> Evaluation:
    """Compare two saved TREC run files on ``qrels`` with a paired ``test``, no index needed
    (``xlidx eval --compare A.trec,B.trec --qrels FILE``); the runs are named by their files."""
    from xlidx.eval.compare import compare_files

    check_test(test, comparing=True)
    judgments = load_qrels(qrels)
    result = Evaluation(comparison=compare_files(a, b, judgments.judgments, test=test))
    if report is not None:
        settings = {"run A": str(a), "run B": str(b), "test": test}
        result.report_path = _write(
            report, "xlidx eval: run comparison", result, [], judgments, settings
        )
    return result


def _run_of(side: Side, result: Evaluation) -> Run:
    if side.kind == "mode":
        return next(r.run for r in result.reports if r.mode == side.value)
    if side.kind == "index":
        return result.others[side.value].run
    from xlidx.eval.metrics import read_trec_run

    return read_trec_run(side.value)


def _run_settings(
    searcher: Searcher, queries: QueriesIn, qrels: QrelsIn, options: EvalOptions
) -> dict[str, Any]:
    """The report's settings: what produced the runs."""
    from xlidx.eval.reporting import index_settings

    w = options.weights
    return {
        **index_settings(searcher),
        "queries": str(queries) if isinstance(queries, (str, Path)) else f"{len(queries)} given",
        "qrels": str(qrels) if isinstance(qrels, (str, Path)) else load_qrels(qrels).path,
        "k": options.k,
        "fusion": options.fusion or "minmax (default)",
        "weights": f"{w[0]:g},{w[1]:g}" if w is not None else "xlidx decides per query",
        "balance": options.balance,
        "centering": options.centering,
        "translate query": options.translate,
    }


def _write(
    path: str | Path,
    title: str,
    result: Evaluation,
    queries: Sequence[EvalQuery],
    qrels: Qrels,
    settings: Mapping[str, Any],
) -> Path:
    from xlidx.eval.reporting import report_data, write_report

    data = report_data(
        title,
        [*result.reports, *result.others.values()],
        queries,
        qrels,
        settings=settings,
        labels=[
            *(r.mode for r in result.reports),
            *(f"{o.mode} · {n}" for n, o in result.others.items()),
        ],
        comparison=result.comparison,
    )
    return write_report(path, data)
