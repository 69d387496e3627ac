# ruff: noqa: RUF001, RUF002 (this module is about non-ASCII punctuation)
"""An offline, rule-based sentence splitter for translation.

Machine translation models work sentence by sentence, so texts are cut into sentences
before translation and put back together afterwards. This splitter needs no model and no
download. It cuts:

* at newlines (each line is split on its own; the newlines are kept as separators);
* after ``. ! ? …`` (with any closing quotes or brackets) followed by whitespace and a
  character that is not lowercase: ``"Dr. Smith"``, ``"e.g. Paris"``, ``"No. 5"``, ``"J. Doe"``
  and ``"3.14"`` do not end a sentence;
* after the CJK terminators ``。！？``, the danda ``। ॥`` (Devanagari, Bengali), the Arabic
  ``؟`` and Urdu ``۔``, and the stops of Armenian ``։``, Ethiopic ``።``, Myanmar ``။`` and
  Khmer ``។``, with or without whitespace after them: none of them is ever inside a word;
* after a Greek question mark ``;`` (a semicolon after a Greek letter) followed by whitespace;
* at the spaces between two Thai, Lao, Myanmar or Khmer letters: these scripts write little
  or no sentence punctuation and put a space between sentences and phrases, never inside a
  word (a space before the Thai repetition mark ``ๆ`` does not cut);
* inside sentences longer than ``max_chars``, at the last clause mark (``, ; : ، ؛ ·`` and the
  CJK ones) or space that fits, and failing those between two characters, never inside a
  letter with its combining marks (Devanagari or Thai vowel signs, Arabic harakat).

:func:`segment` returns sentences *and* the separators between them, so that
``"".join(s.text for s in segment(text)) == text`` always holds and a translated text keeps
its original spacing and line breaks.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_CHARS = 500

# Words that take a period without ending a sentence (compared lowercased, without the period).
ABBREVIATIONS = frozenset(
    {
        # titles
        *("mr", "mrs", "ms", "dr", "prof", "sr", "sra", "srta", "jr", "st", "mt"),
        *("mme", "mlle", "hr", "fr", "frau", "herr", "dott", "sig"),
        # Latin and common short forms
        *("vs", "cf", "ca", "approx", "dept", "est", "inc", "ltd", "co", "corp", "al"),
        *("bzw", "usw", "vgl", "ggf", "evtl"),
        # dotted forms, compared without their final period
        *("e.g", "i.e", "z.b", "u.a", "d.h", "s.o", "o.a", "a.m", "p.m", "ph.d"),
        # months
        *("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    }
)
# Abbreviations that only hold before a number: "No. 5", "Fig. 3", "p. 12".
NUMBER_ABBREVIATIONS = frozenset(
    {"no", "nr", "nos", "fig", "figs", "vol", "p", "pp", "ch", "art", "sec", "tab"}
)

# Terminators that never occur inside a word: they cut with or without whitespace after them.
_STRONG_TERMINATORS = "。！？｡।॥؟۔։።။។"
_GREEK = "\u0370-\u03ff\u1f00-\u1fff"
_BOUNDARY = re.compile(
    r"(?P<end>[.!?…‽\u037e]+|[。！？｡]+|[।॥؟۔։።။។]+"  # terminal punctuation (; is Greek's ?)
    rf"|(?<=[{_GREEK}]);)"  # ASCII ";" after a Greek letter: the Greek question mark
    r"(?P<close>[\"'”’»)\]}」』）】〕]*)"  # closing quotes and brackets
    r"(?P<space>[^\S\n]*)"  # whitespace up to the next sentence (never a newline)
)
_LINE = re.compile(r"[^\n]+")
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # "e.g", "U.S", "z.B"
_CLAUSE_CUT = re.compile(r"[,;:，、；：،؛·\u0387]\s*|\s+")
_PREPOSED_VOWELS = "เแโใไເແໂໃໄ"  # Thai and Lao vowels written before their consonant
# Thai, Lao, Myanmar and Khmer letters; a space between two of them ends a sentence or phrase.
_SPACED_SCRIPT = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
_SPACED_CUT = re.compile(rf"(?<=[{_SPACED_SCRIPT}])[^\S\n]+(?=[{_SPACED_SCRIPT}])(?![ๆฯ])")


@dataclass(frozen=True)
class Segment:
    """A piece of a text: a sentence to translate, or the separator kept between two."""

    text: str
    is_sentence: bool


def _last_word(prefix: str) -> str:
    word = prefix.rsplit(None, 1)[-1] if prefix.strip() else ""
    return word.lstrip("\"'“‘«([{¿¡")


def _is_abbreviation(prefix: str, following: str) -> bool:
    """Whether the period that ends ``prefix`` belongs to an abbreviation or an initial."""
    word = _last_word(prefix)
    lower = word.lower()
    if lower in ABBREVIATIONS or _DOTTED.fullmatch(word):
        return True
    if lower in NUMBER_ABBREVIATIONS and following[:1].isdigit():
        return True
    return len(word) == 1 and word.isalpha() and word != "I"


def _boundaries(line: str) -> list[tuple[int, int]]:
    """(sentence end, next sentence start) offsets of every cut inside one line."""
    cuts = []
    for m in _BOUNDARY.finditer(line):
        start_next = m.end()
        if start_next >= len(line):
            break
        following = line[start_next:]
        if m.group("end")[0] not in _STRONG_TERMINATORS:
            if not m.group("space") or following[0].islower() or following[0] in ",;:":
                continue
            if m.group("end") == "." and _is_abbreviation(line[: m.start()], following):
                continue
        cuts.append((m.end("close"), start_next))
    cuts.extend((m.start(), m.end()) for m in _SPACED_CUT.finditer(line))
    merged: list[tuple[int, int]] = []
    for cut in sorted(cuts):  # a stop followed by a space is found by both rules: cut once
        if merged and cut[0] < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], cut[1]))
        else:
            merged.append(cut)
    return merged


def _cluster_start(text: str, pos: int) -> int:
    """``pos``, moved back so as not to split a letter from its combining marks or joiners, a
    virama from the consonant it joins (``क्ष``), nor a Thai or Lao vowel written before its
    consonant (``เ แ โ ใ ไ``) from it."""
    cut = pos
    while 0 < cut < len(text) and (
        unicodedata.category(text[cut]).startswith("M")
        or text[cut] in "\u200c\u200d"
        or text[cut - 1] in _PREPOSED_VOWELS
        or unicodedata.combining(text[cut - 1]) == 9  # a virama joins the next consonant
    ):
        cut -= 1
    return cut or pos


def _wrap(sentence: str, max_chars: int) -> list[Segment]:
    """Cut a too-long sentence at clause marks or spaces into pieces of at most max_chars."""
    out: list[Segment] = []
    rest = sentence
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = None
        for m in _CLAUSE_CUT.finditer(window):
            piece_end = m.start() + (0 if m.group()[0].isspace() else 1)
            if 0 < piece_end <= max_chars:
                cut = (piece_end, m.end())
        end, start = cut if cut else (_cluster_start(rest, max_chars),) * 2
        out.append(Segment(rest[:end], True))
        if start > end:
            out.append(Segment(rest[end:start], False))
        rest = rest[start:]
    if rest:
        out.append(Segment(rest, True))
    return out


def _line_segments(line: str, max_chars: int) -> list[Segment]:
    out: list[Segment] = []
    start = 0
    for end, next_start in [*_boundaries(line), (len(line), len(line))]:
        out.extend(_wrap(line[start:end], max_chars))
        if next_start > end:
            out.append(Segment(line[end:next_start], False))
        start = next_start
    return out


def segment(text: str, *, max_chars: int = MAX_CHARS) -> list[Segment]:
    """Cut ``text`` into sentences and separators; joining every ``.text`` gives ``text``."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    out: list[Segment] = []
    pos = 0
    for m in _LINE.finditer(text):
        line = m.group()
        stripped = line.strip()
        if not stripped:
            continue
        lead = m.start() + (len(line) - len(line.lstrip()))
        if lead > pos:
            out.append(Segment(text[pos:lead], False))
        out.extend(_line_segments(stripped, max_chars))
        pos = lead + len(stripped)
    if pos < len(text):
        out.append(Segment(text[pos:], False))
    return _merge_separators(out)


def _merge_separators(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for seg in segments:
        if merged and not seg.is_sentence and not merged[-1].is_sentence:
            merged[-1] = Segment(merged[-1].text + seg.text, False)
        else:
            merged.append(seg)
    return merged


def split_sentences(text: str, *, max_chars: int = MAX_CHARS) -> list[str]:
    """The sentences of ``text``, in order, without the whitespace between them."""
    return [s.text for s in segment(text, max_chars=max_chars) if s.is_sentence]
