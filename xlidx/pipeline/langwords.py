"""The evidence language detection weighs: the words of a text, and, for text written in Han
characters only, the character sets that tell Chinese from Japanese (pure functions).

Only the words of a text count. URLs, e-mail addresses, code identifiers (``snake_case``,
``camelCase``, ``obj.attr``, anything holding ``_ / \\ = < > { } [ ] | # @``), numbers,
punctuation and emoji are dropped (:func:`text_words`); :func:`evidence` counts the letters
left, a CJK character or a Hangul syllable counting as three.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from itertools import pairwise

# --- the words of a text ---------------------------------------------------------------------

_CODE_CHARS = frozenset("_/\\=<>{}[]()|#@`^~$%&*+")
# stripped from both ends of a chunk before it is judged
_PROSE_ENDS = "\"'\u201c\u201d\u2018\u2019«»()[]{}<>.,;:!?¿¡…*_~`"
_JOINERS = frozenset("'\u2019-\u2010")  # kept inside a word: "dov'è", "İstanbul'da", "anak-anak"
_ZW = frozenset("\u200c\u200d")  # zero-width (non-)joiners inside Persian, Indic words
_DOTTED = re.compile(r"[^\W_][.:][^\W_]")
_URL_PREFIXES = ("http://", "https://", "ftp://", "www.", "mailto:")


def _letterish(ch: str) -> bool:
    """A letter, or a mark or zero-width joiner that belongs to one (Devanagari, Thai, ...)."""
    return ch.isalpha() or ch in _ZW or unicodedata.category(ch).startswith("M")


def _wide(ch: str) -> bool:
    """A CJK ideograph, kana or Hangul syllable: one of them carries a word's worth."""
    return "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\ufaff"


def _unspaced(ch: str) -> bool:
    """A letter of a script written without spaces between words (CJK, Thai, Lao, Khmer,
    Myanmar): a whitespace chunk of it is a clause or a whole paragraph, not one token."""
    return (
        _wide(ch)
        or "\u0e00" <= ch <= "\u0eff"
        or "\u1000" <= ch <= "\u109f"
        or ("\u1780" <= ch <= "\u17ff")
    )


def _is_code(chunk: str) -> bool:
    """A URL, address, file name, identifier or expression rather than prose.

    A chunk holding letters of an unspaced script is judged by its prose, never as code: a
    bracket, ``%`` or ``2.0`` inside a Chinese or Thai sentence only separates its words.
    """
    if any(_unspaced(ch) for ch in chunk):
        low = chunk.lower()
        return low.startswith(_URL_PREFIXES) or "://" in low
    low = chunk.lower()
    if low.startswith(_URL_PREFIXES) or "://" in low or not _CODE_CHARS.isdisjoint(chunk):
        return True
    # obj.attr, example.com, e.g, a::b: a dot or colon between two word characters
    return _DOTTED.search(chunk) is not None


def _pieces(chunk: str) -> Iterable[str]:
    """The runs of letters of ``chunk``; apostrophes and hyphens between letters join a run.

    A run that touches a digit (``mp3``, ``3D``, ``H2O``) is a code, not a word, unless it
    holds CJK characters (``3个苹果``).
    """
    runs: list[tuple[int, int]] = []
    start = None
    for i, ch in enumerate(chunk):
        inside = _letterish(ch) or (
            ch in _JOINERS and start is not None and i + 1 < len(chunk) and _letterish(chunk[i + 1])
        )
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(chunk)))
    for a, b in runs:
        piece = chunk[a:b]
        digit = (a > 0 and chunk[a - 1].isdigit()) or (b < len(chunk) and chunk[b].isdigit())
        if not digit or any(_wide(ch) for ch in piece):
            yield piece


def text_words(text: str) -> list[str]:
    """The words of ``text`` that say something about its language, lowercased.

    Whitespace-separated chunks that look like code or URLs are dropped whole; the rest are cut
    into runs of letters (digits, punctuation and symbols separate them), and a run with a
    lowercase letter followed by an uppercase one (``getUserById``, ``iPhone``) is dropped.
    """
    out: list[str] = []
    for chunk in text.split():
        if _is_code(chunk.strip(_PROSE_ENDS)):
            continue
        for piece in _pieces(chunk):
            if not any(a.islower() and b.isupper() for a, b in pairwise(piece)):
                out.append(piece.lower())
    return out


def evidence(words: Sequence[str]) -> int:
    """Letters in ``words``, a CJK character or Hangul syllable counting three."""
    return sum(3 if _wide(ch) else 1 for w in words for ch in w if ch.isalpha())


# --- language sets and the shared lingua detectors --------------------------------------------


# --- Chinese or Japanese ----------------------------------------------------------------------


def han_only(words: Sequence[str]) -> bool:
    """Han characters and no kana or Hangul: Chinese or Japanese, lingua always says Chinese."""
    letters = [ch for w in words for ch in w if ch.isalpha()]
    if any("\u3040" <= ch <= "\u30ff" or "\uac00" <= ch <= "\ud7af" for ch in letters):
        return False
    return any(_wide(ch) for ch in letters)


def _jis_level(ch: str) -> int:
    """1: a JIS X 0208 level-1 kanji (common Japanese); 2: level 2 (rare); 0: not in JIS."""
    try:
        b = ch.encode("shift_jis")
    except UnicodeEncodeError:
        return 0
    code = int.from_bytes(b, "big") if len(b) == 2 else 0
    return 1 if 0x889F <= code <= 0x9872 else 2 if 0x989F <= code <= 0xEAA4 else 0


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def han_language(words: Sequence[str], prior_zh: float, prior_ja: float) -> tuple[str, str]:
    """zh or ja for Han-only text, and the rule that decided, read from the character sets.

    GB2312 is what Simplified Chinese writes, JIS X 0208 level 1 the kanji of common Japanese
    use (level 2 holds the rare ones, and most Traditional Chinese forms: 們 參 學 樣). A
    character common Japanese does not write means Chinese (zh:script); one Simplified
    Chinese does not write, in text all of common Japanese kanji (縄 館 時), means Japanese
    (ja:script) unless the prior holds more zh than ja (such text can still be Traditional
    Chinese). Characters both write say nothing: the prior decides, lingua's zh on a tie.
    """
    han = [ch for w in words for ch in w if _wide(ch)]
    if any(_jis_level(ch) != 1 for ch in han):
        return "zh", "han:zh-script"
    if not all(_in_gb2312(ch) for ch in han):
        return ("zh", "han:prior") if prior_zh > prior_ja else ("ja", "han:ja-script")
    return ("ja", "han:prior") if prior_ja > prior_zh else ("zh", "han:shared")
