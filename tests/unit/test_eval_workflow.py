"""The evaluate workflow without a cluster: the choices it checks, the sides of a comparison,
the result's JSON, and ``xlidx eval --compare A.trec,B.trec`` (in-process, no index)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from xlidx.errors import ConfigError
from xlidx.eval.choices import (
    Side,
    as_sides,
    check_fusion,
    check_modes,
    check_test,
    parse_compare,
)
from xlidx.eval.evaluation import Evaluation
from xlidx.eval.harness import ModeReport
from xlidx.eval.metrics import write_trec_run
from xlidx.workflows.evaluate import compare_run_files, load_qrels, load_queries

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1, "d4": 0}}


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two run files (B ranks every relevant document first, A third) and a qrels file."""
    a = {q: [("x", 3.0), ("y", 2.0), (f"d{q[1]}", 1.0)] for q in QRELS}
    b = {q: [(f"d{q[1]}", 3.0), ("x", 2.0), ("y", 1.0)] for q in QRELS}
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {r}\n" for q, ds in QRELS.items() for d, r in ds.items()))
    return (
        write_trec_run(tmp_path / "a.trec", a),
        write_trec_run(tmp_path / "b.trec", b),
        qrels,
    )


def test_sides_parse_modes_files_and_indices(tmp_path: Path) -> None:
    run = tmp_path / "x.trec"
    run.write_text("")
    assert parse_compare(f"bm25, {run}") == (Side("mode", "bm25"), Side("file", str(run)))
    assert parse_compare("knn,news-old") == (Side("mode", "knn"), Side("index", "news-old"))
    assert as_sides(("hybrid", Side("index", "b"))) == (Side("mode", "hybrid"), Side("index", "b"))
    assert as_sides("bm25,knn") == (Side("mode", "bm25"), Side("mode", "knn"))
    for bad in ("bm25", "knn,knn", "a,b,c", ""):
        with pytest.raises(ConfigError, match="--compare takes two different runs A,B"):
            parse_compare(bad)
    with pytest.raises(ConfigError, match="--compare takes two different runs"):
        as_sides(("bm25", "bm25"))
    with pytest.raises(ConfigError, match=r"--compare: run file not found: missing\.trec"):
        parse_compare("bm25,missing.trec")
    assert Side("index", "news-old").label("hybrid") == "hybrid · news-old"
    assert Side("file", str(run)).label() == "x.trec"
    assert Side("mode", "bm25").label("hybrid") == "bm25"


def test_choices_are_checked_with_the_flags_messages() -> None:
    assert check_modes("Hybrid, bm25,hybrid") == ("hybrid", "bm25")
    assert check_modes(["knn"]) == ("knn",)
    with pytest.raises(ConfigError, match="--mode is empty"):
        check_modes(" , ")
    with pytest.raises(ConfigError, match="unknown mode 'dense'"):
        check_modes("bm25,dense")
    assert check_fusion(None) is None and check_fusion("rrf") == "rrf"
    with pytest.raises(ConfigError, match="unknown fusion 'sum': expected minmax or rrf"):
        check_fusion("sum")
    assert check_test("fisher", comparing=True) == "fisher"
    with pytest.raises(ConfigError, match="unknown --test 'chi2'"):
        check_test("chi2", comparing=True)
    with pytest.raises(ConfigError, match="--test applies with --compare A,B"):
        check_test("tukey", comparing=False)


def test_inputs_are_files_or_objects(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    qrels = load_qrels(runs[2])
    assert qrels.judgments["q3"] == {"d3": 1, "d4": 0} and qrels.path == str(runs[2])
    assert load_qrels(qrels) is qrels
    assert load_qrels(QRELS).judgments == QRELS
    tsv = tmp_path / "q.tsv"
    tsv.write_text("q1\tcat\ten\n")
    (q,) = load_queries(tsv)
    assert (q.qid, q.text, q.lang) == ("q1", "cat", "en")
    assert load_queries([q]) == [q]


def _report(mode: str) -> ModeReport:
    return ModeReport(mode, {"nDCG@10": 0.5}, {}, {}, queries=2, evaluated=2, run={})


def test_evaluation_json_is_what_eval_json_prints() -> None:
    plain = Evaluation([_report("bm25"), _report("knn")])
    data = plain.to_json()
    assert isinstance(data, list) and [r["mode"] for r in data] == ["bm25", "knn"]
    compared = Evaluation([_report("bm25")], comparison={"a": "bm25", "b": "knn"})
    assert compared.to_json() == {
        "reports": [_report("bm25").to_json()],
        "comparison": {"a": "bm25", "b": "knn"},
    }


def test_compare_run_files(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    a, b, qrels = runs
    page = tmp_path / "out" / "cmp.html"
    result = compare_run_files(a, b, qrels, report=page)
    data = result.to_json()
    assert isinstance(data, dict) and data["reports"] == []
    comparison = data["comparison"]
    assert (comparison["a"], comparison["b"], comparison["test"]) == ("a.trec", "b.trec", "student")
    assert comparison["queries"] == 3
    assert comparison["metrics"]["R@1"]["a"] == 0.0 and comparison["metrics"]["R@1"]["b"] == 1.0
    assert result.report_path == page and "a.trec" in page.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown --test 'chi2'"):
        compare_run_files(a, b, qrels, test="chi2")
    with pytest.raises(ConfigError, match="cannot write the report"):
        compare_run_files(a, b, qrels, report=tmp_path)  # a directory


def _cli() -> typer.Typer:
    from xlidx.cli.eval import eval_command

    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `eval` a subcommand
        """Nothing."""

    return app


def test_cli_compares_run_files_without_an_index(runs: tuple[Path, Path, Path]) -> None:
    a, b, qrels = runs
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    args = ["eval", "--qrels", str(qrels), "--compare", f"{a},{b}"]
    res = CliRunner().invoke(_cli(), [*args, "--json", "--test", "fisher"], env=env)
    assert res.exit_code == 0, (res.output, res.exception)
    data = json.loads(res.stdout)
    assert data["reports"] == [] and data["comparison"]["test"] == "fisher"
    res = CliRunner().invoke(_cli(), args, env=env)
    assert res.exit_code == 0, (res.output, res.exception)
    assert "b.trec vs a.trec (student test, 3 queries, alpha 0.05)" in res.stdout
    assert "retrieval quality" not in res.stdout  # no mode was run


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--compare", "a.trec,b.trec"], "--compare: run file not found: a.trec"),
        (["--test", "fisher"], "--test applies with --compare A,B"),
        (["--compare", "bm25,knn", "--test", "chi2"], "unknown --test 'chi2'"),
        ([], "--queries FILE and --qrels FILE are required"),
        (["--queries", "q.tsv", "--qrels", "q.txt"], "--index NAME is required"),
    ],
)
def test_cli_bad_flags_fail_before_any_cluster(extra: list[str], message: str) -> None:
    res = CliRunner().invoke(_cli(), ["eval", *extra])
    assert isinstance(res.exception, ConfigError), res.output
    assert message in str(res.exception)


def test_cli_needs_qrels_to_compare_files(runs: tuple[Path, Path, Path]) -> None:
    a, b, _qrels = runs
    res = CliRunner().invoke(_cli(), ["eval", "--compare", f"{a},{b}"])
    assert isinstance(res.exception, ConfigError)
    assert "--compare RUN_A,RUN_B needs --qrels FILE" in str(res.exception)
