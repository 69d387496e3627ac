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
from xlidx.ingest import IngestOptions, ingest
from xlidx.pipeline.embed import Embedder, load_embedder
from xlidx.search import Searcher

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
