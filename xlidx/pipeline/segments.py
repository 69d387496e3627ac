"""Documents that mix languages: a field's paragraphs, each in its own language.

A field whose paragraphs (blocks separated by a blank line) disagree on their language (an
English abstract over a Greek body) is kept as *segments*, runs of consecutive paragraphs in
one language. Each segment is translated from its own language, its text goes into the
``i18n.<field>.<lang>`` field of that language (so each is analyzed by its own analyzer), and
the document counts every segment's language in ``xlidx.langs``. A field in one language, and
a record that declares its ``lang``, have no segments. Paragraph languages come from
:func:`~xlidx.pipeline.detect.detect_passages`, so a heading or a quoted name never flips.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from xlidx.documents import UNDETERMINED, Prepared
from xlidx.pipeline.detect import Detector, detect_passages
from xlidx.pipeline.langwords import evidence, text_words

_BLANK_LINE = re.compile(r"\n[ \t]*\n")

Segment = tuple[str, str]  # (language, text)


def paragraphs(text: str) -> list[str]:
    """The non-empty blocks of ``text`` separated by blank lines, stripped."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def merge_runs(paras: Sequence[str], langs: Sequence[str]) -> list[Segment]:
    """Consecutive paragraphs of one language joined (pure)."""
    out: list[Segment] = []
    for text, lang in zip(paras, langs, strict=True):
        if out and out[-1][0] == lang:
            out[-1] = (lang, f"{out[-1][1]}\n\n{text}")
        else:
            out.append((lang, text))
    return out


HEADING_LETTERS = 16  # as detect_passages: fewer letters say nothing of a language


def headings_follow(paras: Sequence[str], langs: Sequence[str]) -> list[str]:
    """A paragraph too short to have a language of its own (a heading) takes the language of
    the paragraph after it, the section it heads."""
    out = list(langs)
    for i in range(len(out) - 2, -1, -1):
        if evidence(text_words(paras[i])) < HEADING_LETTERS:
            out[i] = out[i + 1]
    return out


def segment_stage(batch: Sequence[Prepared], detector: Detector) -> None:
    """Find the fields whose paragraphs are in several languages (after detection)."""
    for p in batch:
        if p.record.lang:
            continue
        for f, text in p.record.texts.items():
            doc_lang = p.field_langs.get(f, UNDETERMINED)
            paras = paragraphs(text)
            if len(paras) < 2 or doc_lang == UNDETERMINED:
                continue
            langs = headings_follow(paras, detect_passages(paras, doc_lang, detector))
            if len(set(langs)) > 1:
                p.segments[f] = merge_runs(paras, langs)


def field_units(p: Prepared, f: str) -> list[Segment]:
    """What to translate and index of field ``f``: its segments, else the whole text."""
    return p.segments.get(f) or [(p.field_langs.get(f, UNDETERMINED), p.record.texts[f])]
