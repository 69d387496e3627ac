"""Paired comparison of two runs (ranx): means, significance, missing queries, bad input."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from xlidx.errors import ConfigError
from xlidx.eval.compare import RANX_NAMES, compare_files, compare_runs, to_ranx
from xlidx.eval.metrics import MEASURES, evaluate, judged_queries, write_trec_run

Hits = list[tuple[str, float]]


def _qrels(n: int, seed: int) -> dict[str, dict[str, int]]:
    """``n`` queries with 1-4 graded relevant documents and a few judged non-relevant ones."""
    rng = random.Random(seed)
    qrels: dict[str, dict[str, int]] = {}
    for i in range(n):
        docs = rng.sample(range(300), 8)
        judged = {f"d{d}": rng.randint(1, 3) for d in docs[: rng.randint(1, 4)]}
        judged.update({f"d{d}": 0 for d in docs[4:]})
        qrels[f"q{i}"] = judged
    return qrels


def _random_run(qrels: dict[str, dict[str, int]], seed: int, depth: int = 120) -> dict[str, Hits]:
    """Random rankings over a 300-document pool, so relevant documents land anywhere."""
    rng = random.Random(seed)
    return {
        q: [(f"d{d}", rng.uniform(0.0, 10.0)) for d in rng.sample(range(300), depth)] for q in qrels
    }


def _ranking(relevant: list[str], rank: int, depth: int = 30) -> Hits:
    """A ranking with the relevant documents starting at ``rank`` (1-based), noise elsewhere."""
    noise = [f"n{i}" for i in range(depth)]
    docs = noise[: rank - 1] + relevant + noise[rank - 1 :]
    return [(doc, float(depth + len(relevant) - i)) for i, doc in enumerate(docs[:depth])]


def test_ranx_names() -> None:
    assert to_ranx("nDCG@10") == "ndcg@10"
    assert to_ranx("RR@10") == "mrr@10"
    assert to_ranx("R@1") == "recall@1"
    assert to_ranx("R@100") == "recall@100"
    assert to_ranx("P@5") == "precision@5"
    assert to_ranx("AP") == to_ranx("MAP") == "map"
    assert to_ranx("AP@100") == "map@100"
    assert to_ranx("ndcg@20") == "ndcg@20"
    assert to_ranx("RR") == "mrr"
    assert to_ranx("MRR@10") == "mrr@10"
    assert to_ranx("Recall@100") == "recall@100"
    assert to_ranx("Success@10") == "hit_rate@10"
    assert all(to_ranx(m) == r for m, r in RANX_NAMES.items())
    for bad in ("foo@10", "P", "R", "Success", "RR(rel=2)@10", "nDCG@0", "nDCG@", ""):
        with pytest.raises(ConfigError) as info:
            to_ranx(bad)
        assert "\n" not in str(info.value)


def test_a_clearly_better_run_is_significant() -> None:
    rng = random.Random(7)
    qrels = {f"q{i}": {f"rel{i}": 1} for i in range(60)}
    a = {q: _ranking(list(docs), rng.randint(2, 15)) for q, docs in qrels.items()}
    b = {q: _ranking(list(docs), rng.choice((1, 1, 1, 2))) for q, docs in qrels.items()}
    for test in ("student", "fisher"):
        result = compare_runs(a, b, qrels, labels=("base", "new"), test=test)
        assert result["a"] == "base" and result["b"] == "new"
        assert result["test"] == test and result["alpha"] == 0.05
        assert result["queries"] == 60
        assert set(result["metrics"]) == set(MEASURES)
        ndcg = result["metrics"]["nDCG@10"]
        assert ndcg["diff"] == pytest.approx(ndcg["b"] - ndcg["a"])
        assert ndcg["diff"] > 0.2
        assert ndcg["p_value"] < 0.001
        assert ndcg["significant"] is True
        assert result["metrics"]["R@100"]["diff"] == pytest.approx(0.0)  # both find all
        assert result["metrics"]["R@100"]["significant"] is False
    # Swapping the runs flips the sign, not the p-value (two-sided, paired).
    ab = compare_runs(a, b, qrels)["metrics"]["RR@10"]
    ba = compare_runs(b, a, qrels)["metrics"]["RR@10"]
    assert ba["diff"] == pytest.approx(-ab["diff"])
    assert ba["p_value"] == pytest.approx(ab["p_value"])


@pytest.mark.parametrize("test", ["student", "fisher", "tukey"])
def test_identical_runs_are_not_significant(test: str) -> None:
    qrels = _qrels(30, seed=1)
    run = _random_run(qrels, seed=2)
    result = compare_runs(run, dict(run), qrels, test=test)
    for values in result["metrics"].values():
        assert values["diff"] == 0.0
        assert values["a"] == values["b"]
        assert not math.isnan(values["p_value"])
        assert values["p_value"] == pytest.approx(1.0)  # the t-test's NaN is reported as 1.0
        assert values["significant"] is False


def test_means_agree_with_ir_measures() -> None:
    qrels = _qrels(50, seed=3)
    qrels["unjudged"] = {"d1": 0, "d2": 0}  # no relevant document: left out by both
    a = _random_run(qrels, seed=4)
    b = _random_run(qrels, seed=5)
    ties = {q: [(d, round(s)) for d, s in hits] for q, hits in b.items()}  # many ties
    measures = (*MEASURES, "P@10", "AP", "AP@100", "nDCG", "Success@5")
    for run_a, run_b in ((a, b), (a, ties)):
        result = compare_runs(run_a, run_b, qrels, measures=measures)
        assert result["queries"] == 50
        expected_a = evaluate(run_a, qrels, measures)
        expected_b = evaluate(run_b, qrels, measures)
        assert any(v > 0 for v in expected_a.values())
        for m in measures:
            assert result["metrics"][m]["a"] == pytest.approx(expected_a[m], abs=1e-6)
            assert result["metrics"][m]["b"] == pytest.approx(expected_b[m], abs=1e-6)


def test_a_query_missing_from_a_run_scores_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"c": 1}, "q3": {"x": 0}}
    a = {"q1": [("a", 2.0), ("b", 1.0)], "extra": [("a", 1.0)]}  # lacks q2; extra is unjudged
    b = {"q1": [("b", 2.0), ("a", 1.0)], "q2": [("c", 1.0)], "q3": [("x", 1.0)]}
    result = compare_runs(a, b, qrels)
    assert result["queries"] == 2  # q1 and q2: q3 has no relevant document
    rr = result["metrics"]["RR@10"]
    assert rr["a"] == pytest.approx((1.0 + 0.0) / 2)
    assert rr["b"] == pytest.approx((0.5 + 1.0) / 2)
    assert rr["diff"] == pytest.approx(0.25)
    r1 = result["metrics"]["R@1"]
    assert (r1["a"], r1["b"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert r1["p_value"] == 1.0 and r1["significant"] is False  # per query: (1, 0) vs (0, 1)

    # The same over many queries, against ir-measures.
    qrels = _qrels(40, seed=6)
    full = _random_run(qrels, seed=7)
    partial = {q: hits for i, (q, hits) in enumerate(full.items()) if i % 3}
    result = compare_runs(full, partial, qrels)
    assert result["queries"] == len(judged_queries(qrels)) == 40
    for m, mean in evaluate(partial, qrels).items():
        assert result["metrics"][m]["b"] == pytest.approx(mean, abs=1e-6)
        assert result["metrics"][m]["b"] <= result["metrics"][m]["a"]


def test_bad_input() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": [("a", 1.0)], "q2": [("c", 1.0)]}
    bad_calls: list[dict[str, Any]] = [
        {"test": "wilcoxon"},
        {"alpha": 0.0},
        {"alpha": 1.0},
        {"alpha": 1.5},
        {"alpha": math.nan},
        {"alpha": True},
        {"measures": ()},
        {"measures": ("nDCG@10", "bogus")},
        {"n_permutations": 0},
    ]
    for kwargs in bad_calls:
        with pytest.raises(ConfigError) as info:
            compare_runs(run, run, qrels, **kwargs)
        assert "\n" not in str(info.value), kwargs
    for a, b in (({}, run), (run, {"q1": []}), (run, {"other": [("a", 1.0)]})):
        with pytest.raises(ConfigError, match=r"empty|no hits"):
            compare_runs(a, b, qrels)
    with pytest.raises(ConfigError, match="no relevant judgment"):
        compare_runs(run, run, {"q1": {"a": 0}})


def test_ranx_stays_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    qrels = _qrels(5, seed=8)  # fewer than 10 queries: ranx drops numba to one thread
    numba = pytest.importorskip("numba")
    threads = numba.get_num_threads()
    compare_runs(_random_run(qrels, seed=9), _random_run(qrels, seed=10), qrels, test="fisher")
    assert numba.get_num_threads() == threads
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_compare_files_round_trip(tmp_path: Path) -> None:
    qrels = _qrels(20, seed=11)
    a, b = _random_run(qrels, seed=12), _random_run(qrels, seed=13)
    path_a = write_trec_run(tmp_path / "bm25.trec", a)
    path_b = write_trec_run(tmp_path / "dense" / "run.trec", b, tag="dense")
    result = compare_files(path_a, path_b, qrels)
    assert (result["a"], result["b"]) == ("bm25.trec", "run.trec")
    direct = compare_runs(a, b, qrels)
    for m in MEASURES:
        for key in ("a", "b", "diff", "p_value"):
            assert result["metrics"][m][key] == pytest.approx(direct["metrics"][m][key], abs=1e-9)
    same = compare_files(str(path_a), path_a, qrels, labels=("x", "y"), test="tukey")
    assert (same["a"], same["b"], same["test"]) == ("x", "y", "tukey")
    assert all(not v["significant"] for v in same["metrics"].values())
    with pytest.raises(ConfigError):
        compare_files(tmp_path / "missing.trec", path_a, qrels)
