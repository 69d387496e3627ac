"""Documents that mix languages: segments, their translation and their indexed form (pure
logic; the translator is a fake that tags its output)."""

from __future__ import annotations

from typing import Any

import pytest

from xlidx.documents import Prepared, RawItem, Record, to_record
from xlidx.pipeline.segments import field_units, merge_runs, paragraphs
from xlidx.pipeline.stages import Batch, Translate
from xlidx.pipeline.write import build_document


def _prepared(body: str, **kw: Any) -> Prepared:
    rec = to_record(RawItem("t:1", payload={"id": "d1", "body": body}))
    assert isinstance(rec, Record)
    return Prepared(rec, **kw)


class TaggingTranslator:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []

    def route(self, src: str, tgt: str) -> Any:
        if (src, tgt) == ("el", "fr"):
            from xlidx.errors import ModelError

            raise ModelError("no el->fr package")
        return (src, tgt)

    def translate_many(self, requests: Any) -> list[str]:
        self.requests.extend(requests)
        return [f"[{src}>{tgt}] {text}" for text, src, tgt in requests]

    def describe(self) -> list[dict[str, Any]]:
        return []


def test_paragraphs_and_runs() -> None:
    text = "Abstract one.\n\n  \nΤο σώμα.\n \nΔεύτερη παράγραφος.\n\n"
    paras = paragraphs(text)
    assert paras == ["Abstract one.", "Το σώμα.", "Δεύτερη παράγραφος."]
    assert merge_runs(paras, ["en", "el", "el"]) == [
        ("en", "Abstract one."),
        ("el", "Το σώμα.\n\nΔεύτερη παράγραφος."),
    ]


def test_a_mixed_field_is_translated_segment_by_segment() -> None:
    p = _prepared(
        "Abstract.\n\nΚείμενο.",
        field_langs={"body": "el"},
        segments={"body": [("en", "Abstract."), ("el", "Κείμενο.")]},
    )
    tr = TaggingTranslator()
    Translate(tr, ("en", "de", "fr"))(Batch(prepared=[p]))
    # the English segment stays English in the English text; each segment from its language
    assert p.translations["body"]["en"] == "Abstract.\n\n[el>en] Κείμενο."
    assert p.translations["body"]["de"] == "[en>de] Abstract.\n\n[el>de] Κείμενο."
    assert "fr" not in p.translations["body"]  # one segment has no package: no French text
    assert ("Κείμενο.", "el", "en") in tr.requests


def test_the_indexed_form_of_a_mixed_document() -> None:
    p = _prepared(
        "Abstract.\n\nΚείμενο.",
        field_langs={"body": "el"},
        segments={"body": [("en", "Abstract."), ("el", "Κείμενο.")]},
        translations={"body": {"de": "Zusammenfassung.\n\nText."}},
        vectors=[[0.1], [0.2]],
        passage_langs=["en", "el"],
    )
    doc = build_document(p, model="m")
    assert doc["i18n"]["body"] == {
        "en": "Abstract.",  # each language's own segments, analyzed in that language
        "el": "Κείμενο.",
        "de": "Zusammenfassung.\n\nText.",
    }
    assert doc["xlidx"]["langs"] == ["de", "el", "en"]
    assert [x["lang"] for x in doc["xlidx"]["passages"]] == ["en", "el"]


def test_a_field_in_one_language_has_one_unit() -> None:
    p = _prepared("Nur Deutsch.", field_langs={"body": "de"})
    assert field_units(p, "body") == [("de", "Nur Deutsch.")]
    tr = TaggingTranslator()
    Translate(tr, ("de", "en"))(Batch(prepared=[p]))
    assert p.translations == {"body": {"en": "[de>en] Nur Deutsch."}}
    doc = build_document(p, model="m")
    assert doc["i18n"]["body"] == {"de": "Nur Deutsch.", "en": "[de>en] Nur Deutsch."}


def test_und_text_is_kept_untranslated() -> None:
    p = _prepared("1234 5678", field_langs={"body": "und"})
    tr = TaggingTranslator()
    Translate(tr, ("en",))(Batch(prepared=[p]))
    assert p.translations == {} and tr.requests == []
    assert build_document(p, model="m")["i18n"] == {}


@pytest.mark.slow
def test_segment_stage_finds_the_languages_of_a_mixed_field() -> None:
    from xlidx.pipeline.detect import Detector, detect_stage
    from xlidx.pipeline.segments import segment_stage

    en, el = (_texts(lang)[0] for lang in ("en", "el"))
    mixed = _prepared(f"Abstract\n\n{en}\n\n{el}\n\n{_texts('el')[1]}")
    plain = _prepared(f"{el}\n\n{_texts('el')[2]}")
    detector = Detector()
    detect_stage([mixed, plain], detector)
    segment_stage([mixed, plain], detector)
    langs = [lang for lang, _ in mixed.segments["body"]]
    assert langs == ["en", "el"]  # the heading joins the English abstract; Greek paragraphs merge
    assert mixed.segments["body"][0][1].startswith("Abstract\n\n")
    assert plain.segments == {}


def _texts(lang: str) -> list[str]:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures" / "langtexts" / f"{lang}.json"
    paragraphs_: list[str] = json.loads(path.read_text(encoding="utf-8"))["paragraphs"]
    return paragraphs_
