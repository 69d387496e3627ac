"""`xlidx eval` end to end on the real dev node.

* fast: a tiny index (the tiny random model) with handmade queries and qrels; every mode runs,
  the TREC run files read back with ir-measures and ranx to the same numbers, the CLI prints
  the documented JSON.
* the HTML report and the paired comparison; Tatoeba EN→FR with the real
  multilingual-e5-small is in ``test_eval_tatoeba.py``, the migration gate in
  ``test_eval_gate.py``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.fixtures.tatoeba import index_rows
from xlidx.backends import open_backend
from xlidx.config import ConnectionSettings
from xlidx.errors import ConfigError
from xlidx.eval import EvalOptions, EvalQuery, Qrels, read_qrels, run_eval
from xlidx.eval.metrics import MEASURES
from xlidx.pipeline.embed import Embedder
from xlidx.search import Searcher

pytestmark = pytest.mark.integration


DOCS = [
    ("en-cat", "en", "The cat sleeps on the warm windowsill all afternoon."),
    ("en-train", "en", "The night train to Vienna leaves from platform nine."),
    ("en-bread", "en", "Sourdough bread needs a starter and a long fermentation."),
    ("fr-chat", "fr", "Le chat dort sur le rebord chaud de la fenêtre tout l'après-midi."),
    ("fr-train", "fr", "Le train de nuit pour Vienne part du quai neuf."),
    ("fr-pain", "fr", "Le pain au levain demande un levain et une longue fermentation."),
    ("de-katze", "de", "Die Katze schläft den ganzen Nachmittag auf der warmen Fensterbank."),
    ("de-zug", "de", "Der Nachtzug nach Wien fährt von Gleis neun ab."),
]
QUERIES = [
    ("q-cat", "cat windowsill", "en"),
    ("q-train", "night train Vienna", "en"),
    ("q-pain", "pain au levain", "fr"),
    ("q-zug", "Nachtzug Wien", "de"),
]
QRELS = [
    ("q-cat", "en-cat", 1),
    ("q-cat", "fr-chat", 1),
    ("q-cat", "de-katze", 1),
    ("q-train", "en-train", 1),
    ("q-train", "fr-train", 1),
    ("q-pain", "fr-pain", 1),
    ("q-pain", "en-bread", 1),
    ("q-zug", "de-zug", 1),
    ("q-zug", "en-train", 0),
]


@pytest.fixture
def tiny_index(dev_node: ConnectionSettings, index_name: str, tiny_embedder: Embedder) -> str:
    index_rows(dev_node, index_name, tiny_embedder, DOCS)
    return index_name


@pytest.fixture
def eval_files(tmp_path: Path) -> tuple[Path, Path]:
    queries = tmp_path / "queries.tsv"
    queries.write_text(
        "qid\ttext\tlang\n" + "".join(f"{q}\t{t}\t{lang}\n" for q, t, lang in QUERIES)
    )
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {r}\n" for q, d, r in QRELS))
    return queries, qrels


def _ranx_metrics(qrels_path: Path, run_path: str) -> dict[str, float]:
    from numba.core.errors import NumbaWarning
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate as ranx_evaluate

    names = {"nDCG@10": "ndcg@10", "RR@10": "mrr@10", "R@1": "recall@1", "R@100": "recall@100"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaWarning)  # numba's own typing chatter
        scores = ranx_evaluate(
            RanxQrels.from_file(str(qrels_path), kind="trec"),
            RanxRun.from_file(run_path, kind="trec"),
            list(names.values()),
        )
    return {ours: float(scores[theirs]) for ours, theirs in names.items()}


def test_eval_tiny_index_all_modes(
    dev_node: ConnectionSettings,
    tiny_index: str,
    tiny_embedder: Embedder,
    eval_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    import ir_measures

    from xlidx.eval import read_queries

    queries, qrels_path = eval_files
    qrels = read_qrels(qrels_path)
    searcher = Searcher(open_backend(dev_node), tiny_index, embedder=tiny_embedder)
    seen: list[tuple[str, int, int]] = []
    reports = run_eval(
        searcher,
        read_queries(queries),
        qrels,
        EvalOptions(run_prefix=tmp_path / "runs" / "tiny", k=20),
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    assert [r.mode for r in reports] == ["hybrid", "bm25", "knn"]
    assert ("encoding", 4, 4) in seen
    for mode in ("hybrid", "bm25", "knn"):
        assert (mode, 4, 4) in seen

    for r in reports:
        assert r.queries == r.evaluated == 4
        assert set(r.metrics) == set(MEASURES)
        assert all(0.0 <= v <= 1.0 for v in r.metrics.values()), r.metrics
        assert set(r.per_language) == {"en", "fr", "de"}
        assert r.per_language["de"]["queries"] == 2  # q-cat and q-zug have a German document
        assert all(0.0 <= v <= 1.0 for x in r.per_language.values() for v in x["metrics"].values())
        assert set(r.language_share) == {"en", "fr", "de"}
        en = r.language_share["en"]
        assert en["queries"] == 2 and en["depth"] == 10
        assert en["relevant"] == {"de": 0.2, "en": 0.4, "fr": 0.4}
        if en["hits"]:
            assert sum(en["hits"].values()) == pytest.approx(1.0, abs=1e-3)

        # the run file is a TREC run that ir-measures and ranx read back to the same numbers
        assert r.run_file == str(tmp_path / "runs" / f"tiny.{r.mode}.trec")
        back = ir_measures.calc_aggregate(
            [ir_measures.parse_measure(m) for m in MEASURES],
            ir_measures.read_trec_qrels(str(qrels_path)),
            ir_measures.read_trec_run(r.run_file),
        )
        assert {str(m): v for m, v in back.items()} == pytest.approx(r.metrics)
        assert _ranx_metrics(qrels_path, r.run_file) == pytest.approx(r.metrics)
        lines = Path(r.run_file).read_text().splitlines()
        assert lines and all(len(line.split()) == 6 for line in lines)

    by_mode = {r.mode: r for r in reports}
    # BM25 matches each query's own words: the same-language document is first
    assert by_mode["bm25"].metrics["RR@10"] == 1.0
    assert by_mode["hybrid"].fusion is not None
    assert by_mode["hybrid"].fusion["method"] == "minmax"


def test_eval_rejects_bad_inputs(
    dev_node: ConnectionSettings, tiny_index: str, tiny_embedder: Embedder
) -> None:
    searcher = Searcher(open_backend(dev_node), tiny_index, embedder=tiny_embedder)
    queries = [EvalQuery("q1", "cat", "en")]
    with pytest.raises(ConfigError, match="'q9' is not in the queries file"):
        run_eval(searcher, queries, Qrels({"q1": {"en-cat": 1}, "q9": {"x": 1}}))
    with pytest.raises(ConfigError, match="unknown mode 'dense'"):
        run_eval(searcher, queries, Qrels({"q1": {"en-cat": 1}}), EvalOptions(modes=("dense",)))
    with pytest.raises(ConfigError, match="weights must be two non-negative numbers"):
        run_eval(searcher, queries, Qrels({"q1": {"en-cat": 1}}), EvalOptions(weights=(-1.0, 1.0)))
    missing = Searcher(open_backend(dev_node), "xlidx-no-such-index-eval")
    from xlidx.errors import MappingError

    with pytest.raises(MappingError, match="no xlidx index"):
        run_eval(missing, queries, Qrels({"q1": {"en-cat": 1}}))


def _cli() -> typer.Typer:
    from xlidx.cli.eval import eval_command

    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `eval` a subcommand
        """Nothing."""

    return app


def test_eval_cli_json_and_run_files(
    dev_node: ConnectionSettings,
    tiny_index: str,
    eval_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    queries, qrels = eval_files
    env = {"XLIDX_URL": dev_node.urls[0], "COLUMNS": "200", "NO_COLOR": "1"}
    args = ["eval", "--index", tiny_index, "--queries", str(queries), "--qrels", str(qrels)]
    res = CliRunner().invoke(
        _cli(),
        [*args, "--mode", "bm25,knn", "--json", "--k", "10", "--run-out", f"{tmp_path}/runs/"],
        env=env,
    )
    assert res.exit_code == 0, (res.output, res.exception)
    data = json.loads(res.stdout)
    assert isinstance(data, list) and [d["mode"] for d in data] == ["bm25", "knn"]
    for d in data:
        assert set(d["metrics"]) == {"nDCG@10", "RR@10", "R@1", "R@100"}
        assert {"per_language", "language_share", "queries", "evaluated"} <= set(d)
        assert d["run_file"] == f"{tmp_path}/runs/{tiny_index}.{d['mode']}.trec"
        assert Path(d["run_file"]).is_file()

    res = CliRunner().invoke(
        _cli(),
        [*args, "--mode", "hybrid", "--fusion", "rrf", "--weights", "1,1", "--balance"],
        env=env,
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert "nDCG@10" in res.stdout and "by document language" in res.stdout
    assert "hybrid fusion: rrf" in res.stdout and "balanced" in res.stdout

    for bad, message in [
        (["--mode", "bm25,dense"], "unknown mode 'dense'"),
        (["--weights", "0.5"], "--weights must be two numbers"),
        (["--fusion", "sum"], "unknown fusion 'sum'"),
    ]:
        res = CliRunner().invoke(_cli(), [*args, *bad], env=env)
        assert isinstance(res.exception, ConfigError), res.output
        assert message in str(res.exception)
    res = CliRunner().invoke(_cli(), ["eval", "--index", tiny_index, "--queries", str(queries)])
    assert isinstance(res.exception, ConfigError)

    # JSONL queries without a language: the engine detects it
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"id": "q-cat", "query": "The cat sleeps on the warm windowsill"}\n')
    one = tmp_path / "one.qrels"
    one.write_text("q-cat 0 en-cat 1\nq-cat 0 fr-chat 1\n")
    res = CliRunner().invoke(
        _cli(),
        ["eval", "--index", tiny_index, "--queries", str(jsonl), "--qrels", str(one), "--json"],
        env=env,
    )
    assert res.exit_code == 0, (res.output, res.exception)
    data = json.loads(res.stdout)
    assert [d["mode"] for d in data] == ["hybrid", "bm25", "knn"]
    assert all(set(d["language_share"]) == {"en"} for d in data)
    assert data[1]["metrics"]["R@1"] == 0.5  # BM25: en-cat first, fr-chat not first


def test_index_evaluate_in_process_compares_modes_and_indices(
    dev_node: ConnectionSettings,
    tiny_index: str,
    tiny_embedder: Embedder,
    eval_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """The service layer's evaluate: files or objects in, typed reports out, the comparison
    (a mode, another index) and the HTML report, with no process and no printing."""
    from xlidx.eval.choices import Side
    from xlidx.workflows import Cluster

    queries, qrels = eval_files
    stages: list[str] = []
    index = Cluster(open_backend(dev_node)).index(tiny_index)
    result = index.evaluate(
        queries, qrels, modes="bm25", embedder=tiny_embedder, compare=("bm25", "knn"),
        report=tmp_path / "r.html", progress=lambda stage, _d, _t: stages.append(stage),
    )  # fmt: skip
    assert [r.mode for r in result.reports] == ["bm25", "knn"] and not result.others
    data = result.to_json()
    assert isinstance(data, dict) and data["reports"] == result.mode_reports()
    assert (data["comparison"]["a"], data["comparison"]["b"]) == ("bm25", "knn")
    assert result.report_path == tmp_path / "r.html" and result.report_path.is_file()
    assert {"starting", "encoding", "bm25", "knn"} <= set(stages)

    # another index, with the queries and qrels as objects: evaluated in the first mode
    other = f"{tiny_index}-other"
    index_rows(dev_node, other, tiny_embedder, DOCS[:5])
    judgments = {q: {d: r for qq, d, r in QRELS if qq == q} for q, _t, _l in QUERIES}
    result = index.evaluate(
        [EvalQuery(q, t, lang) for q, t, lang in QUERIES], judgments, modes=["knn"],
        embedder=tiny_embedder, compare=(Side("mode", "knn"), Side("index", other)),
    )  # fmt: skip
    assert [r.mode for r in result.reports] == ["knn"] and list(result.others) == [other]
    assert result.others[other].mode == "knn" and result.report_path is None
    comparison = result.comparison
    assert comparison is not None and comparison["b"] == f"knn · {other}"
    assert comparison["metrics"]["nDCG@10"]["b"] == pytest.approx(
        result.others[other].metrics["nDCG@10"], abs=1e-4
    )
    with pytest.raises(ConfigError, match="unknown fusion 'sum'"):
        index.evaluate(queries, qrels, fusion="sum")


# -- the HTML report, paired comparison, and the migration gate -------------------------------

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--window-size=1280,2400",
)  # fmt: skip
BROWSER_OWN = "not an origin"  # the initiator of chromium's own background requests


def _chromium(page: Path, out: Path) -> tuple[str, Any, list[str]]:
    """Render ``page`` headless: its DOM after loading, a screenshot, and the URLs of every
    request the page made (chromium's own background requests left out)."""
    import subprocess

    from PIL import Image

    from tests.conftest import require_binary

    binary = require_binary("chromium", "/usr/bin/chromium")
    out.mkdir(parents=True, exist_ok=True)
    netlog, shot = out / "net.json", out / "shot.png"
    url = page.resolve().as_uri()
    common = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={out / 'profile'}"]
    shot_run = subprocess.run(
        [*common, f"--log-net-log={netlog}", f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.is_file(), shot_run.stderr[-2000:]
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False
    ).stdout
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = [
        p["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in (p := e.get("params", {}))
        and p.get("initiator") != BROWSER_OWN
    ]
    return dom, Image.open(shot).convert("L"), requests


def test_eval_report_renders_offline_with_charts_and_the_comparison(
    dev_node: ConnectionSettings,
    tiny_index: str,
    eval_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    queries, qrels = eval_files
    env = {"XLIDX_URL": dev_node.urls[0], "COLUMNS": "200", "NO_COLOR": "1"}
    page = tmp_path / "report.html"
    args = ["eval", "--index", tiny_index, "--queries", str(queries), "--qrels", str(qrels)]
    res = CliRunner().invoke(
        _cli(),
        [*args, "--json", "--report", str(page), "--compare", "bm25,knn",
         "--run-out", f"{tmp_path}/runs/"],
        env=env,
    )  # fmt: skip
    assert res.exit_code == 0, (res.output, res.exception)
    data = json.loads(res.stdout)
    assert [r["mode"] for r in data["reports"]] == ["hybrid", "bm25", "knn"]
    comparison = data["comparison"]
    assert (comparison["a"], comparison["b"], comparison["test"]) == ("bm25", "knn", "student")
    by_mode = {r["mode"]: r["metrics"] for r in data["reports"]}
    for m, v in comparison["metrics"].items():
        assert v["a"] == pytest.approx(by_mode["bm25"][m], abs=1e-4)
        assert v["b"] == pytest.approx(by_mode["knn"][m], abs=1e-4)
        assert 0.0 <= v["p_value"] <= 1.0

    dom, shot, requests = _chromium(page, tmp_path / "chromium")
    for chart in ("modes", "comparison", "share-hybrid", "relevant-hybrid", "latency"):
        assert f'data-chart="{chart}"' in dom, chart
    assert dom.count("<rect") > 20  # bars and heatmap cells, drawn
    lo, hi = shot.getextrema()
    dark = sum(shot.histogram()[:200]) / (shot.width * shot.height)
    assert hi - lo > 100 and dark > 0.01, (lo, hi, dark)  # not a blank page
    assert requests == [], requests  # opened offline: the page asked for nothing

    # the detector works: a page that loads an image over HTTP is caught
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    assert _chromium(control, tmp_path / "control")[2] == ["http://127.0.0.1:9/x.png"]

    # two saved run files, no index: the same comparison
    runs = [f"{tmp_path}/runs/{tiny_index}.{m}.trec" for m in ("bm25", "knn")]
    res = CliRunner().invoke(
        _cli(), ["eval", "--qrels", str(qrels), "--compare", ",".join(runs), "--json"], env=env
    )
    assert res.exit_code == 0, (res.output, res.exception)
    files = json.loads(res.stdout)["comparison"]
    for m, v in files["metrics"].items():
        assert v["diff"] == pytest.approx(comparison["metrics"][m]["diff"], abs=1e-6)


def test_eval_compare_bad_input_one_line(
    dev_node: ConnectionSettings, tiny_index: str, eval_files: tuple[Path, Path], tmp_path: Path
) -> None:
    from tests.conftest import run_cli

    queries, qrels = eval_files
    env = {"XLIDX_URL": dev_node.urls[0]}
    base = ["eval", "--index", tiny_index, "--queries", str(queries), "--qrels", str(qrels)]
    for extra, message in [
        (["--compare", "bm25"], "--compare takes two different runs A,B"),
        (["--compare", "knn,knn"], "--compare takes two different runs A,B"),
        (["--compare", "bm25,missing.trec"], "--compare: run file not found: missing.trec"),
        (["--compare", "bm25,knn", "--test", "chi2"], "unknown --test 'chi2'"),
        (["--report", str(tmp_path)], "cannot write the report"),  # a directory
    ]:
        proc = run_cli(*base, *extra, env=env)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1 and message in lines[0], proc.stderr
