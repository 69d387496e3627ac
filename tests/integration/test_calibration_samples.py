"""The query-side sample of a calibration comes from each document's own language: an English
title over German, French or Spanish bodies (as in catalogues, or corpora built from Wikipedia)
no longer makes every language's query-side mean the mean of English titles. Through the CLI,
on both engines, with the real multilingual-e5-small (a prompted model: its queries have a
side of their own). Tatoeba's sentences are CC BY 2.0 FR, by the Tatoeba project and its
contributors (see /work/shared/data/tatoeba/SOURCE.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fixtures.tatoeba import PAIRS, TATOEBA, available, lines
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration

DOCS = 30  # per language
SENTENCES = 3  # per body: longer than its title, so the body gives the document's language


def _cos(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _pool(out: Path) -> dict[str, list[dict[str, str]]]:
    if not available():
        from tests.conftest import unavailable

        unavailable(f"the Tatoeba data is not at {TATOEBA}")
    pool: dict[str, list[dict[str, str]]] = {}
    for name, code in PAIRS:
        other, english = lines(f"tatoeba.{name}-eng.{name}"), lines(f"tatoeba.{name}-eng.eng")
        pool[code] = [
            {"id": f"{code}-{i}", "title": english[i * SENTENCES],
             "body": " ".join(other[i * SENTENCES : (i + 1) * SENTENCES])}
            for i in range(DOCS)
        ]  # fmt: skip
    rows = [doc for docs in pool.values() for doc in docs]
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in rows), "utf-8")
    return pool


@pytest.mark.parametrize("node", ["dev_node", "es_node"])
def test_titles_in_another_language_do_not_make_the_query_side(
    node: str, request: pytest.FixtureRequest, e5_small_model: Path, tmp_path: Path
) -> None:
    from tests.conftest import drop_index, run_cli
    from xlidx.indices.calibrate import first_sentence
    from xlidx.pipeline.embed import load_embedder

    settings: ConnectionSettings = request.getfixturevalue(node)
    env = {"XLIDX_URL": settings.urls[0]}
    name = f"xlidx-test-titles-{uuid.uuid4().hex[:8]}"
    pool = _pool(tmp_path / "pool.jsonl")
    try:
        done = run_cli("ingest", str(tmp_path / "pool.jsonl"), "--index", name, "--model",
                       str(e5_small_model), "--device", "cpu", "--text-fields", "title,body",
                       "--languages", "en,fr,de,es", env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        made = run_cli("index", "calibrate", name, "--centering", "on", "--min-docs", "20",
                       "--device", "cpu", "--json", env=env)  # fmt: skip
        assert made.returncode == 0, made.stderr
        report = json.loads(made.stdout)
        assert report["warnings"] == []
        assert sorted(report["languages"]) == ["de", "es", "fr"]
        assert all(m["queries"] == m["docs"] >= 20 for m in report["languages"].values())
        status = run_cli("index", "status", name, "--json", env=env)
        cal = json.loads(status.stdout)["calibration"]
        assert cal["warnings"] == []

        # each query-side mean is that of the bodies' first sentences, not of the titles
        from xlidx.backends import open_backend
        from xlidx.indices.manage import resolve
        from xlidx.pipeline.calibration import from_index_meta

        backend = open_backend(settings)
        state = resolve(backend, name)
        assert state is not None
        stored = from_index_meta(state.xlidx_meta)
        assert stored is not None
        model = load_embedder(str(e5_small_model), device="cpu")
        query_means = {}
        for lang, docs in pool.items():
            labelled = {h.id for h in backend.sample_language(state.index, lang, 1000)}
            docs = [d for d in docs if d["id"] in labelled]  # as ingest detected them
            assert len(docs) == report["languages"][lang]["docs"]
            bodies = [first_sentence(d["body"]) or "" for d in docs]
            want = np.mean(model.encode_query(bodies), axis=0)
            titles = np.mean(model.encode_query([d["title"] for d in docs]), axis=0)
            got = stored.vector(stored.languages[lang].query)
            assert _cos(got, want) > 0.9999, lang
            assert _cos(got, titles) < _cos(got, want), lang
            query_means[lang] = got
        # and they are told apart (from English titles they agreed to the 4th decimal)
        for a in query_means:
            for b in query_means:
                if a < b:
                    assert _cos(query_means[a], query_means[b]) < 0.999, (a, b)
    finally:
        drop_index(settings, name)
