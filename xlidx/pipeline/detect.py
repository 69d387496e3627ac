"""Language detection with lingua over every language it knows: documents, passages, queries.

Languages
    :data:`ALL_LANGUAGES` holds the ISO 639-1 code of each of lingua's 75 languages.
    :data:`DEFAULT_LANGUAGES` is ``()``, and ``()`` means *all of them* wherever a language set
    is taken (``Detector(())``, :func:`parse_languages`). A non-empty set restricts detection
    to those languages, for users who know their corpus.

Evidence
    Only the words of a text count. URLs, e-mail addresses, code identifiers (``snake_case``,
    ``camelCase``, ``obj.attr``, anything holding ``_ / \\ = < > { } [ ] | # @``), numbers,
    punctuation and emoji are dropped first. Text whose words hold fewer than three letters
    (a CJK character or a Hangul syllable counts as three) is ``und`` (undetermined).

Rule (documents, :meth:`Detector.detect_many`)
    lingua scores the first 2,000 characters of the words as one text. Where it is
    near-certain (top confidence >= ``0.99``), that language is the answer. Otherwise every
    word votes: lingua's confidence values for the word alone, floored at ``1e-4``, are
    multiplied over the words (summed as logs) and normalised; the best language's share is
    the confidence. A word can then weigh at most a factor 10^4, so a name or a loanword cannot
    outvote a sentence, which whole-text scoring lets it do (on the fixture paragraphs the vote
    turns 3 of 5 errors right: 2 id->ms and the hi->mr; the floor's value, 1e-2 to 1e-6,
    changes nothing there). A confidence below ``min_confidence`` gives ``und``.

    ``DEFAULT_MIN_CONFIDENCE = 0.25``. Over 75 languages the confidence of short text is low:
    on the 276 fixture questions (2 to 7 words) lingua's own threshold of 0.5 left 47 ``und``
    and removed 5 of 11 errors; the vote confidence at 0.25 leaves a few short, truly
    ambiguous snippets ``und`` and every paragraph labelled (see benchmarks/bench_detect.py
    for the table). Paragraphs are never near the threshold.

Queries (:func:`detect_query`) and passages (:func:`detect_passages`)
    The same vote, combined with a prior: the index's own language distribution for a query,
    the document's language for a passage. See those functions for the rules.

A record that declares its own ``lang`` is not detected at all (:func:`detect_stage`).
lingua's detector for a language set is built once per process and shared by every
:class:`Detector` over that set (lingua itself shares the loaded models between detectors).
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from xlidx.documents import UNDETERMINED, Prepared, is_lang_code
from xlidx.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Every language lingua 2.x knows, by ISO 639-1 code (tests check this against lingua).
ALL_LANGUAGES: tuple[str, ...] = (
    *("af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en"),
    *("eo", "es", "et", "eu", "fa", "fi", "fr", "ga", "gu", "he", "hi", "hr", "hu", "hy"),
    *("id", "is", "it", "ja", "ka", "kk", "ko", "la", "lg", "lt", "lv", "mi", "mk", "mn"),
    *("mr", "ms", "nb", "nl", "nn", "pa", "pl", "pt", "ro", "ru", "sk", "sl", "sn", "so"),
    *("sq", "sr", "st", "sv", "sw", "ta", "te", "th", "tl", "tn", "tr", "ts", "uk", "ur"),
    *("vi", "xh", "yo", "zh", "zu"),
)
#: ``()``: detect among every language of :data:`ALL_LANGUAGES`.
DEFAULT_LANGUAGES: tuple[str, ...] = ()
#: The ten languages detection was restricted to before 0.1 (kept for comparison).
LEGACY_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "it", "pt", "nl", "ru", "zh", "ja")
DEFAULT_MIN_CONFIDENCE = 0.25
DEFAULT_QUERY_MIN_CONFIDENCE = 0.25
_SAMPLE_CHARS = 2000  # detecting on the first 2,000 characters is as good and much faster
_MIN_LETTERS = 3  # fewer letters than this in the words of a text: und
_VOTE_GATE = 0.99  # lingua's whole-text confidence at which the word vote is skipped
_WORD_FLOOR = 1e-4  # the least confidence one word can give a language in the vote


# --- the words of a text ---------------------------------------------------------------------

_CODE_CHARS = frozenset("_/\\=<>{}[]|#@`^~$%&*+")
_JOINERS = frozenset("'’-‐")  # kept inside a word: "dov'è", "İstanbul'da", "anak-anak"
_ZW = frozenset("\u200c\u200d")  # zero-width (non-)joiners inside Persian, Indic words
_URL_PREFIXES = ("http://", "https://", "ftp://", "www.", "mailto:")


def _letterish(ch: str) -> bool:
    """A letter, or a mark or zero-width joiner that belongs to one (Devanagari, Thai, ...)."""
    return ch.isalpha() or ch in _ZW or unicodedata.category(ch).startswith("M")


def _wide(ch: str) -> bool:
    """A CJK ideograph, kana or Hangul syllable: one of them carries a word's worth."""
    return "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\ufaff"


def _is_code(chunk: str) -> bool:
    """A URL, address, file name, identifier or expression rather than prose."""
    low = chunk.lower()
    if low.startswith(_URL_PREFIXES) or "://" in low or not _CODE_CHARS.isdisjoint(chunk):
        return True
    # obj.attr, example.com, e.g, a::b: a dot or colon between two word characters
    return any(
        mid in ".:" and a.isalnum() and b.isalnum() for a, mid, b in zip(chunk, chunk[1:], chunk[2:])
    )


def _pieces(chunk: str) -> Iterable[str]:
    """The runs of letters of ``chunk``; apostrophes and hyphens between letters join a run."""
    start = None
    for i, ch in enumerate(chunk):
        inside = _letterish(ch) or (
            ch in _JOINERS and start is not None and i + 1 < len(chunk) and _letterish(chunk[i + 1])
        )
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            yield chunk[start:i]
            start = None
    if start is not None:
        yield chunk[start:]


def text_words(text: str) -> list[str]:
    """The words of ``text`` that say something about its language, lowercased.

    Whitespace-separated chunks that look like code or URLs are dropped whole; the rest are cut
    into runs of letters (digits, punctuation and symbols separate them), and a run with a
    lowercase letter followed by an uppercase one (``getUserById``, ``iPhone``) is dropped.
    """
    out: list[str] = []
    for chunk in text.split():
        if _is_code(chunk.strip("\"'“”‘’«»()[]{}<>.,;:!?¿¡…*_~`")):
            continue
        for piece in _pieces(chunk):
            if not any(a.islower() and b.isupper() for a, b in pairwise(piece)):
                out.append(piece.lower())
    return out


def evidence(words: Sequence[str]) -> int:
    """Letters in ``words``, a CJK character or Hangul syllable counting three."""
    return sum(3 if _wide(ch) else 1 for w in words for ch in w if ch.isalpha())
