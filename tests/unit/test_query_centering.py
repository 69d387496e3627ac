"""The query side of centering (no cluster): a calibrated index's query vector is centered
once with its language's query-side mean, on every mode that uses it; ``--no-centering`` and
an index calibrated off send the raw vector; where the words leave the language open, the
nearest query-side mean names it; BM25's gate follows the calibration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from tests.unit.test_calibration import calibration
from xlidx.indices.manage import IndexState
from xlidx.pipeline.calibration import Calibration, center
from xlidx.query.plan import Query
from xlidx.search.encode import QueryEncoder
from xlidx.search.searcher import Searcher

EMBEDDING = {"model": "fake", "dimension": 32, "similarity": "cosine", "backend": "test"}


class FakeEmbedder:
    def __init__(self, vector: Sequence[float]) -> None:
        self.vector = list(vector)
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return dict(EMBEDDING)

    def encode_query(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [self.vector for _ in texts]


class FakeFacts:
    index = "books"

    def __init__(self, cal: Calibration | None) -> None:
        x: dict[str, Any] = {"embedding": EMBEDDING, "text_fields": ["body"]}
        if cal is not None:
            x["calibration"] = cal.to_meta()
        self._state = IndexState("books", "books-v1", 1, {"xlidx": x})

    def state(self) -> IndexState:
        return self._state

    def languages(self) -> dict[str, int]:
        return {"en": 60, "de": 55}

    def reach(self, langs: frozenset[str]) -> float:
        return 0.5


def encoder(cal: Calibration | None, lang: str, vector: Sequence[float]) -> QueryEncoder:
    enc = QueryEncoder(FakeFacts(cal), embedder=FakeEmbedder(vector))  # type: ignore[arg-type]
    enc.detect = lambda _text: lang  # type: ignore[method-assign]
    return enc


@pytest.mark.parametrize("mode", ["knn", "hybrid"])
def test_the_query_vector_is_centered_once_with_its_languages_mean(mode: str) -> None:
    cal = calibration()
    raw = list(np.random.default_rng(1).normal(size=32))
    enc = encoder(cal, "de", raw)
    query, _ = enc.prepare(Query("Wo ist der Bahnhof?").mode(mode))
    plan = query.plan()
    assert plan.query_lang == "de"  # detected in kNN mode too: the mean depends on it
    expected = center(raw, cal.vector(cal.languages["de"].query))[0]
    assert np.allclose(plan.vector or (), expected, atol=1e-6)


def test_no_centering_per_query_or_per_index_sends_the_raw_vector() -> None:
    raw = list(np.random.default_rng(2).normal(size=32))
    per_query, _ = encoder(calibration(), "de", raw).prepare(
        Query("Wo ist der Bahnhof?").mode("knn").centering(False)
    )
    assert np.allclose(per_query.plan().vector or (), raw)
    per_index, _ = encoder(calibration(centering=False), "de", raw).prepare(
        Query("Wo ist der Bahnhof?").mode("knn")
    )
    assert np.allclose(per_index.plan().vector or (), raw)
    assert per_index.plan().query_lang is None  # kNN on an uncentered index: no detection


def test_an_open_language_is_named_by_the_nearest_query_side_mean() -> None:
    cal = calibration()
    near_en = cal.vector(cal.languages["en"].query)
    assert encoder(cal, "und", near_en).language("ok?", near_en) == "en"
    assert encoder(calibration(centering=False), "und", near_en).language("ok?", near_en) == ("und")
    assert encoder(cal, "de", near_en).language("Bahnhof", near_en) == "de"  # words first


def test_bm25_gate_follows_the_calibration() -> None:
    for cal, expected in ((calibration(), (0.0, 0.75)), (None, (0.12, 0.75))):
        searcher = Searcher.__new__(Searcher)
        searcher.facts = FakeFacts(cal)  # type: ignore[assignment]
        searcher.encoder = encoder(cal, "de", [0.0] * 32)
        plan = Query("Bahnhof").query_lang("de").plan()
        assert searcher.weights(plan) == expected
