"""`migrate --redetect`'s transform over stored documents (the real detector; the translator
is a fake that tags its output), and the words of unspaced scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xlidx.documents import RawItem, Record, to_record
from xlidx.pipeline.langwords import text_words

LANGTEXTS = Path(__file__).resolve().parent.parent / "fixtures" / "langtexts"


def _para(lang: str, n: int = 0) -> str:
    text: str = json.loads((LANGTEXTS / f"{lang}.json").read_text(encoding="utf-8"))["paragraphs"][
        n
    ]
    return text


class Tagging:
    def route(self, src: str, tgt: str) -> Any:
        return (src, tgt)

    def translate_many(self, requests: Any) -> list[str]:
        return [f"[{src}>{tgt}] {text}" for text, src, tgt in requests]

    def describe(self) -> list[dict[str, Any]]:
        return []


def _stored(payload: dict[str, Any], *, lang: str, translations: dict[str, str]) -> dict[str, Any]:
    """A document as an older xlidx stored it (no lang_declared), labelled ``lang``."""
    rec = to_record(RawItem("t", payload=payload), text_fields=("title", "body"))
    assert isinstance(rec, Record)
    return {
        **rec.extra,
        **rec.texts,
        "i18n": {"body": {lang: rec.texts["body"], **translations}},
        "xlidx": {
            "id": rec.id,
            "lang": lang,
            "field_langs": {"body": lang},
            "translated_to": sorted(translations),
            "content_id": rec.content_id,
            "content_hash": rec.content_hash,
            "model": "m",
            "passages": [{"vector": [0.5, 0.5], "n": 0, "lang": "fr"}],
        },
    }


@pytest.mark.slow
def test_redetect_relabels_keeps_declared_and_translates_again() -> None:
    from xlidx.pipeline.detect import Detector
    from xlidx.workflows.redetect import RedetectReport, redetector

    tr, en, de = _para("tr"), _para("en"), _para("de")
    docs = [
        # Turkish that the old ten-language detection called Spanish, translated from "es"
        _stored({"id": "tr", "body": tr}, lang="es", translations={"en": "wrong"}),
        # English, rightly labelled: its translation stays
        _stored({"id": "en", "body": en}, lang="en", translations={"de": "Übersetzung"}),
        # German text whose record declared "fr": declared languages are kept
        _stored({"id": "decl", "body": de, "lang": "fr"}, lang="fr", translations={}),
    ]
    meta = {"text_fields": ["title", "body"], "translate_to": ["en", "de"]}
    report = RedetectReport()
    out = redetector(meta, Detector(), Tagging(), report)(docs)
    by_id = {d["xlidx"]["id"]: d for d in out}
    assert by_id["tr"]["xlidx"]["lang"] == "tr"
    assert by_id["tr"]["i18n"]["body"]["tr"] == tr
    assert by_id["tr"]["i18n"]["body"]["en"] == f"[tr>en] {tr}"  # made again, from Turkish
    assert by_id["en"]["i18n"]["body"] == {"en": en, "de": "Übersetzung"}  # kept as it was
    assert by_id["decl"]["xlidx"]["lang"] == "fr" and by_id["decl"]["xlidx"]["lang_declared"]
    assert [p["lang"] for p in by_id["en"]["xlidx"]["passages"]] == ["fr"]  # unchanged doc
    assert [p["lang"] for p in by_id["tr"]["xlidx"]["passages"]] == ["tr"]
    assert by_id["tr"]["xlidx"]["content_id"] == docs[0]["xlidx"]["content_id"]
    assert (report.relabelled, report.retranslated, report.translations_dropped) == (1, 1, 0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "人口は約1400万人(2020年)で、大都市です。",
            ["人口は約", "万人", "年", "で", "大都市です"],
        ),
        ("价格上涨了5%，很多人不满意。", ["价格上涨了", "很多人不满意"]),
        ("ราคา(มาก)แพง", ["ราคา", "มาก", "แพง"]),
        ("see getUserById() at https://example.com/x", ["see", "at"]),
    ],
)
def test_brackets_and_digits_inside_unspaced_scripts_separate_words(
    text: str, words: list[str]
) -> None:
    assert text_words(text) == words
