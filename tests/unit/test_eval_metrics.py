"""Metrics (ir-measures), tie handling, TREC run files, and the per-language figures."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from xlidx.errors import ConfigError
from xlidx.eval.harness import language_share, per_language_metrics, run_path
from xlidx.eval.metrics import (
    MEASURES,
    evaluate,
    ordered,
    per_query,
    read_trec_run,
    write_trec_run,
)

LOG2_3 = math.log2(3)


def test_known_values() -> None:
    qrels = {"q1": {"a": 1, "z": 0}, "q2": {"c": 1, "d": 1}}
    run = {
        "q1": [("b", 3.0), ("a", 2.0), ("c", 1.0)],  # relevant at rank 2
        "q2": [("c", 5.0), ("x", 4.0), ("d", 1.0)],  # relevant at ranks 1 and 3
    }
    values = per_query(run, qrels)
    assert values["q1"] == pytest.approx(
        {"nDCG@10": 1 / LOG2_3, "RR@10": 0.5, "R@1": 0.0, "R@100": 1.0}
    )
    ideal = 1 + 1 / LOG2_3
    assert values["q2"] == pytest.approx(
        {"nDCG@10": (1 + 1 / 2) / ideal, "RR@10": 1.0, "R@1": 0.5, "R@100": 1.0}
    )
    assert evaluate(run, qrels) == pytest.approx(
        {m: (values["q1"][m] + values["q2"][m]) / 2 for m in MEASURES}
    )


def test_unretrieved_queries_score_zero_and_unjudged_ones_are_left_out() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": [("a", 1.0)], "q3": [("c", 1.0)], "q4": [("d", 1.0)]}
    values = per_query(run, qrels)
    assert set(values) == {"q1", "q2"}
    assert values["q2"] == dict.fromkeys(MEASURES, 0.0)
    assert evaluate(run, qrels)["R@1"] == pytest.approx(0.5)
    assert evaluate({}, qrels) == dict.fromkeys(MEASURES, 0.0)


def test_graded_relevance() -> None:
    qrels = {"q": {"a": 1, "b": 2}}
    best = evaluate({"q": [("b", 2.0), ("a", 1.0)]}, qrels)["nDCG@10"]
    worse = evaluate({"q": [("a", 2.0), ("b", 1.0)]}, qrels)["nDCG@10"]
    assert best == pytest.approx(1.0)
    assert worse < best


def test_ties_keep_xlidx_order() -> None:
    # evaluators sort ties by document id; xlidx's rank must win
    hits = [("b", 1.0), ("a", 1.0), ("c", 2.0), ("b", 0.5), ("d", float("nan"))]
    out = ordered(hits)
    assert [d for d, _ in out] == ["b", "a", "c", "d"]
    scores = [s for _, s in out]
    assert scores[0] == 1.0
    assert all(x > y for x, y in itertools.pairwise(scores))
    assert evaluate({"q": hits}, {"q": {"a": 1}})["RR@10"] == pytest.approx(0.5)
    assert ordered([]) == []


@pytest.mark.parametrize("second", [1.0, math.nextafter(1.0, -math.inf), 1.0 - 1e-9])
def test_near_ties_keep_xlidx_order_in_every_measure(second: float) -> None:
    # trec_eval would put "z" first on a tie (document ids descending), and pytrec_eval
    # compares in single precision, so doubles a hair apart tie too
    run = {"q": [("a", 1.0), ("z", second)]}
    assert evaluate(run, {"q": {"z": 1}}) == pytest.approx(
        {"nDCG@10": 1 / LOG2_3, "RR@10": 0.5, "R@1": 0.0, "R@100": 1.0}
    )


def test_unknown_measure() -> None:
    with pytest.raises(ConfigError, match="unknown measure 'NotAMeasure@3'"):
        evaluate({"q": [("a", 1.0)]}, {"q": {"a": 1}}, ("NotAMeasure@3",))


def test_trec_run_round_trip(tmp_path: Path) -> None:
    import ir_measures

    run = {"q1": [("b", 0.7), ("a", 0.7), ("c", 0.1)], "q2": [("x", 12.5)]}
    path = write_trec_run(tmp_path / "sub" / "run.trec", run, tag="t1")
    lines = path.read_text().splitlines()
    assert lines == [
        "q1 Q0 b 1 0.699999988 t1",  # 0.7 in single precision, 9 digits: exact
        "q1 Q0 a 2 0.699999928 t1",  # the tie: the next single-precision value below
        "q1 Q0 c 3 0.100000001 t1",
        "q2 Q0 x 1 12.5 t1",
    ]
    back = read_trec_run(path)
    assert [d for d, _ in back["q1"]] == ["b", "a", "c"]
    assert {q: ordered(h) for q, h in back.items()} == {q: ordered(h) for q, h in run.items()}
    # ir-measures reads it, and agrees with the harness on metrics
    qrels = {"q1": {"a": 1}, "q2": {"x": 1}}
    from_file = ir_measures.calc_aggregate(
        [ir_measures.parse_measure(m) for m in MEASURES],
        qrels,
        ir_measures.read_trec_run(str(path)),
    )
    assert {str(k): v for k, v in from_file.items()} == pytest.approx(evaluate(run, qrels))


def test_trec_run_bad_ids_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="document id 'a b' has whitespace"):
        write_trec_run(tmp_path / "r", {"q": [("a b", 1.0)]})
    with pytest.raises(ConfigError, match="query id 'q 1' has whitespace"):
        write_trec_run(tmp_path / "r", {"q 1": [("a", 1.0)]})
    with pytest.raises(ConfigError, match="invalid run tag"):
        write_trec_run(tmp_path / "r", {"q": [("a", 1.0)]}, tag="two words")
    bad = tmp_path / "bad.trec"
    bad.write_text("q Q0 a 1 1.0 t\nq Q0 b 2\n")
    with pytest.raises(ConfigError, match=r"bad.trec:2: expected 'qid Q0 docid rank score tag'"):
        read_trec_run(bad)
    bad.write_text("q Q0 a 1 high t\n")
    with pytest.raises(ConfigError, match="the score 'high' is not a number"):
        read_trec_run(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        read_trec_run(tmp_path / "missing.trec")


def test_run_path(tmp_path: Path) -> None:
    assert run_path(tmp_path / "runs" / "x", "docs", "knn") == tmp_path / "runs" / "x.knn.trec"
    assert run_path(tmp_path, "docs", "bm25") == tmp_path / "docs.bm25.trec"
    assert run_path("not-yet/", "docs", "hybrid") == Path("not-yet/docs.hybrid.trec")
    assert run_path("runs/base", "docs", "hybrid") == Path("runs/base.hybrid.trec")


def test_per_language_metrics_restrict_qrels() -> None:
    qrels = {"q1": {"fr1": 1, "en1": 1}, "q2": {"fr2": 1}, "q3": {"en3": 0}}
    langs = {"fr1": "fr", "en1": "en", "fr2": "fr", "en3": "en"}
    run = {"q1": [("en1", 2.0), ("fr1", 1.0)], "q2": [("x", 1.0), ("fr2", 0.5)]}
    out = per_language_metrics(run, qrels, langs)
    assert sorted(out) == ["en", "fr"]
    assert out["en"]["queries"] == 1  # q3 has no relevant English document: left out
    assert out["en"]["metrics"]["R@1"] == 1.0
    assert out["fr"]["queries"] == 2
    assert out["fr"]["metrics"]["RR@10"] == pytest.approx(0.5)  # both at rank 2
    assert out["fr"]["metrics"]["R@1"] == 0.0


def test_language_share() -> None:
    qrels = {"q1": {"f1": 1}, "q2": {"f2": 1, "e2": 1}, "q3": {"f3": 0}, "q4": {"g4": 1}}
    doc_langs = {"f1": "fr", "f2": "fr", "e2": "en", "g4": "missing"}
    query_langs = {"q1": "en", "q2": "en", "q3": "en", "q4": "de"}
    hit_langs = {"q1": ["en", "en", "fr", "en"], "q2": ["fr", "fr", "en", "fr"], "q3": ["en"]}
    out = language_share(hit_langs, qrels, query_langs, doc_langs, depth=3)
    assert out == {
        "de": {"queries": 1, "depth": 3, "hits": {}, "relevant": {"missing": 1.0}},
        "en": {
            "queries": 2,
            "depth": 3,
            "hits": {"en": 0.5, "fr": 0.5},  # top 3 of q1 and q2 only
            "relevant": {"en": round(1 / 3, 4), "fr": round(2 / 3, 4)},
        },
    }
