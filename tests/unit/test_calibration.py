"""Per-language mean centering (pure): measuring the language component, the decision, centering
passages and queries, undoing it, the stored form, and the stale-document query."""

from __future__ import annotations

import numpy as np
import pytest

from xlidx.backends._dsl import stale_query
from xlidx.errors import ConfigError, MappingError
from xlidx.indices.calibrate import languages_due, symmetric
from xlidx.pipeline.calibration import (
    STRONG_SHARE,
    Calibration,
    Component,
    LanguageMeans,
    average,
    center,
    check_mode,
    close,
    decide,
    from_index_meta,
    language_component,
    mean_id,
    restore,
)
from xlidx.query.hybrid import default_weights

DIM = 32


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def samples(offset: float, n: int = 80, langs: tuple[str, ...] = ("en", "de", "fr")) -> dict:
    """Vectors of shared 'meaning' plus a language direction of size ``offset``."""
    rng = np.random.default_rng(7)
    out = {}
    for i, lang in enumerate(langs):
        direction = np.zeros(DIM)
        direction[i] = offset
        out[lang] = unit(rng.normal(size=(n, DIM)) / np.sqrt(DIM) + direction)
    return out


def calibration(centering: bool = True) -> Calibration:
    rng = np.random.default_rng(11)
    means = {k: average(rng.normal(size=(5, DIM))) for k in ("en", "de", "qen", "qde")}
    ids = {k: mean_id(v) for k, v in means.items()}
    fb_doc = average([means["en"], means["de"]])
    fb_q = average([means["qen"], means["qde"]])
    by_id = {ids[k]: v for k, v in means.items()}
    by_id[mean_id(fb_doc)] = fb_doc
    by_id[mean_id(fb_q)] = fb_q
    return Calibration(
        model="m",
        mode="auto",
        centering=centering,
        reason="test",
        made_at="2026-11-30T00:00:00+00:00",
        languages={
            "en": LanguageMeans(ids["en"], ids["qen"], 60, 60),
            "de": LanguageMeans(ids["de"], ids["qde"], 55, 55),
        },
        fallback=(mean_id(fb_doc), mean_id(fb_q)),
        means=by_id,
        component=Component(0.1, 0.09, 0.98, 2, 115),
    )


def test_a_strong_language_component_is_measured_and_turns_centering_on() -> None:
    strong = language_component(samples(1.0))
    assert strong.adjusted >= STRONG_SHARE and strong.accuracy > 0.9
    assert strong.languages == 3 and strong.vectors == 240
    assert decide(strong, "auto")[0] is True


def test_no_language_component_measures_near_zero_and_stays_off() -> None:
    weak = language_component(samples(0.0))
    assert weak.adjusted < 0.01 and weak.share < STRONG_SHARE  # chance level taken off
    on, reason = decide(weak, "auto")
    assert on is False and "below the 5%" in reason


def test_one_language_cannot_be_measured() -> None:
    one = language_component(samples(1.0, langs=("en",)))
    assert one.languages == 1 and one.adjusted == 0.0
    assert decide(one, "auto") == (
        False,
        "fewer than two languages have enough documents to measure a language component",
    )


def test_modes_override_the_measurement() -> None:
    strong, weak = language_component(samples(1.0)), language_component(samples(0.0))
    assert decide(strong, "off")[0] is False
    assert decide(weak, "on")[0] is True
    with pytest.raises(ConfigError, match="unknown centering 'sometimes'"):
        check_mode("sometimes")


def test_center_and_restore_round_trip() -> None:
    rng = np.random.default_rng(1)
    v = unit(rng.normal(size=DIM))
    m = rng.normal(size=DIM) * 0.3
    c, norm = center(v, m)
    assert abs(np.linalg.norm(c) - 1.0) < 1e-6 and norm > 0
    assert np.allclose(restore(c, norm, m), v, atol=1e-6)
    same, zero = center(m, m)
    assert zero == 0.0 and np.allclose(same, m)


def test_passages_are_centered_by_their_language_and_undone_exactly() -> None:
    cal = calibration()
    raw = list(unit(np.random.default_rng(2).normal(size=(3, DIM))))
    passages = cal.passages([list(v) for v in raw], ["en", "de", "und"])
    assert [p["center"] for p in passages] == [
        cal.languages["en"].document,
        cal.languages["de"].document,
        cal.fallback[0] if cal.fallback else None,
    ]
    assert [p["n"] for p in passages] == [0, 1, 2]
    for p, v in zip(passages, raw, strict=True):
        assert np.allclose(cal.raw(p), v, atol=1e-5)
    assert cal.recenter(passages) is None  # already where the calibration wants them
    off = calibration(centering=False)
    off = Calibration(**{**off.__dict__, "means": cal.means, "languages": cal.languages})
    moved = off.recenter(passages)
    assert moved is not None and all("center" not in p and "norm" not in p for p in moved)
    assert all(np.allclose(p["vector"], v, atol=1e-5) for p, v in zip(moved, raw, strict=True))


def test_query_centering_uses_the_query_side_mean_and_the_fallback() -> None:
    cal = calibration()
    q = list(unit(np.random.default_rng(4).normal(size=DIM)))
    en = cal.center_query(q, "en")
    assert np.allclose(en, center(q, cal.vector(cal.languages["en"].query))[0])
    unknown = cal.center_query(q, "it")
    assert cal.fallback is not None
    assert np.allclose(unknown, center(q, cal.vector(cal.fallback[1]))[0])
    assert calibration(centering=False).center_query(q, "en") == q


def test_nearest_language_reads_the_query_side_means() -> None:
    cal = calibration()
    near_de = cal.vector(cal.languages["de"].query)
    assert cal.nearest_language(near_de) == "de"


def test_the_stored_form_round_trips_and_bad_meta_is_one_clear_error() -> None:
    cal = calibration()
    again = from_index_meta({"calibration": cal.to_meta()})
    assert again == cal
    assert from_index_meta({}) is None
    with pytest.raises(MappingError, match="calibration in _meta is malformed"):
        from_index_meta({"calibration": {"languages": {"en": {"document": "x"}}}})
    with pytest.raises(MappingError, match="carries mean 'nope'"):
        cal.vector("nope")


def test_replaced_means_are_retired_then_dropped_and_merged_ones_kept() -> None:
    cal = calibration()
    old = {**cal.means, "old1": [0.0] * DIM, "old2": [0.0] * DIM}
    with_old = Calibration(**{**cal.__dict__, "means": old, "retired": {"old1": "t0"}})
    retiring = with_old.retiring("t1")
    assert retiring.retired == {"old1": "t0", "old2": "t1"}  # first retirement kept
    dropped = retiring.without({"old1"})
    assert set(dropped.means) == cal.in_use() | {"old2"} and dropped.retired == {"old2": "t1"}
    theirs = Calibration(**{**cal.__dict__, "means": {"theirs": [1.0] * DIM}})
    merged = cal.merged(theirs)
    assert "theirs" in merged.means and merged.retired == {"theirs": cal.made_at}


def test_a_mean_that_comes_out_the_same_keeps_its_id() -> None:
    m = list(np.random.default_rng(3).normal(size=DIM))
    assert close([x * (1 + 1e-6) for x in m], m)
    assert not close([x + 0.01 for x in m], m)


def test_a_passage_whose_mean_is_lost_is_one_clear_error() -> None:
    cal = calibration()
    passage = {"vector": [0.1] * DIM, "n": 0, "lang": "en", "center": "gone", "norm": 0.5}
    with pytest.raises(MappingError, match=r"carries mean .gone.*xlidx index migrate"):
        cal.recenter([passage])


def test_a_vector_equal_to_its_mean_is_stored_with_its_mean_and_norm_zero() -> None:
    cal = calibration()
    mean = cal.vector(cal.languages["en"].document)
    [p] = cal.passages([mean], ["en"])
    assert p["norm"] == 0.0 and p["center"] == cal.languages["en"].document
    assert cal.recenter([p]) is None  # at its target: never rewritten again
    assert np.allclose(cal.raw(p), mean)


def test_centering_on_without_means_centers_nothing() -> None:
    bare = Calibration(**{**calibration().__dict__, "languages": {}, "fallback": None})
    assert bare.centering and not bare.centers
    assert stale_query(bare)["nested"]["query"] == {"exists": {"field": "xlidx.passages.center"}}


def test_languages_due_and_prompts() -> None:
    cal = calibration()
    counts = {"en": 500, "de": 80, "fr": 50, "es": 49, "und": 300}
    assert languages_due(cal, counts, 50) == ["fr"]
    assert languages_due(None, counts, 50) == ["de", "en", "fr"]
    assert symmetric({"query_prompt": "", "document_prompt": ""})
    assert not symmetric({"query_prompt": "query: ", "document_prompt": "passage: "})


def test_stale_query_names_every_passage_off_its_target() -> None:
    cal = calibration()
    q = stale_query(cal)
    should = q["nested"]["query"]["bool"]["should"]
    assert len(should) == 3  # de, en, and the fallback for every other language
    assert {"term": {"xlidx.passages.lang": "de"}} in should[0]["bool"]["filter"]
    off = stale_query(calibration(centering=False))
    assert off["nested"]["query"] == {"exists": {"field": "xlidx.passages.center"}}


def test_bm25_is_gated_harder_on_a_centered_index() -> None:
    assert default_weights(0.5) == (0.12, 0.75)
    assert default_weights(0.5, centered=True) == (0.0, 0.75)
    assert default_weights(0.95, centered=True) == (0.24, 0.75)


def test_rewrite_moves_stale_passages_through_the_bulk_writer() -> None:
    """Conditional passage updates: written, lost to a newer write (409), deleted meanwhile
    (404), or skipped when a passage carries a mean the calibration no longer has."""
    from collections.abc import Iterator
    from typing import Any

    from xlidx.backends.base import RawHit
    from xlidx.indices.calibrate import rewrite
    from xlidx.pipeline.patience import Patience

    cal = calibration()
    raw = {"vector": [0.1] * DIM, "n": 0, "lang": "en"}
    gone = {"vector": [0.1] * DIM, "n": 0, "lang": "en", "center": "gone", "norm": 0.5}

    class Fake:
        def __init__(self) -> None:
            self.stale = [3, 0]  # what count_stale answers, round by round
            self.sent: list[dict[str, Any]] = []

        def refresh(self, index: str) -> None:
            pass

        def get_meta(self, index: str) -> dict[str, Any]:
            return {"xlidx": {"calibration": cal.to_meta()}}

        def count_stale(self, index: str, c: Calibration | None) -> int:
            assert c is cal
            return self.stale.pop(0)

        def stale_documents(self, index: str, c: Calibration | None, *, size: int) -> Any:
            for doc_id, passage in (("a", raw), ("b", raw), ("c", raw), ("lost", gone)):
                src = {"xlidx": {"passages": [passage]}}
                yield RawHit(index, doc_id, source=src, seq_no=1, primary_term=1)

        def passages_update(self, hit: RawHit, passages: Any) -> dict[str, Any]:
            return {"_id": hit.id, "if_seq_no": hit.seq_no, "passages": passages}

        def bulk(self, actions: Any, **_kw: Any) -> Iterator[tuple[bool, dict[str, Any]]]:
            status = {"a": 200, "b": 409, "c": 404}
            for a in actions:
                self.sent.append(a)
                s = status[a["_id"]]
                yield s == 200, {"update": {"_id": a["_id"], "status": s}}

    from xlidx.indices.writer import BulkWriter

    fake = Fake()
    seen: list[tuple[str, int, int]] = []
    writer = BulkWriter(fake, patience=Patience(attempts=0))  # type: ignore[arg-type]
    done = rewrite(
        fake,  # type: ignore[arg-type]
        "docs-v1",
        cal,
        writer=writer,
        progress=lambda what, n, total: seen.append((what, n, total)),
    )
    assert done == (1, 1, 1)  # a rewritten, b in conflict, the lost one left alone
    assert [a["_id"] for a in fake.sent] == ["a", "b", "c"]
    assert fake.sent[0]["passages"][0]["center"] == cal.languages["en"].document
    assert seen == [("moving vectors", 3, 3)]


def test_the_query_side_sample_is_in_the_documents_own_language() -> None:
    from xlidx.indices.calibrate import first_sentence, own_language_text

    title, body = "The bees", "Die Bienen sterben. Warum?"
    doc = {"title": title, "body": body, "xlidx": {"field_langs": {"title": "en", "body": "de"}}}
    assert own_language_text(doc, "de", ["title", "body"]) == body  # not the English title
    assert own_language_text(doc, "en", ["title", "body"]) == title
    assert own_language_text(doc, "fr", ["title", "body"]) is None
    assert first_sentence(body) == "Die Bienen sterben."
    # the segments of a mixed field, unless they are translations
    mixed = {"text": "…", "i18n": {"text": {"fr": "Les abeilles."}},
             "xlidx": {"field_langs": {"text": "de"}}}  # fmt: skip
    assert own_language_text(mixed, "fr", ["text"]) == "Les abeilles."
    mixed["xlidx"]["translated_to"] = ["fr"]  # type: ignore[index]
    assert own_language_text(mixed, "fr", ["text"]) is None
    # written before fields had languages: the first text field, as before
    assert own_language_text({"title": title, "body": body}, "de", ["title", "body"]) == title
    # the engine is asked for what it needs
    from xlidx.backends._dsl import sample_body

    fields = sample_body("de", 10, ["title", "body"], 1)["_source"]
    assert {"xlidx.field_langs", "xlidx.translated_to", "i18n.body.de"} <= set(fields)


def test_nearly_identical_means_are_told() -> None:
    from xlidx.pipeline.calibration import alike

    got = alike({"de": [1.0, 0.0], "fr": [1.0, 0.0001], "es": [0.0, 1.0]})
    assert [(a, b) for a, b, _ in got] == [("de", "fr")] and got[0][2] > 0.999
    assert alike({"de": [1.0, 0.0], "fr": [0.9, 0.1]}) == []
