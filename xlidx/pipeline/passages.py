"""Split a text into passages that fit an encoder's token limit, never dropping any of it.

Pure functions over a token counter, so any tokenizer (Hugging Face, sentencepiece, a word
count) plugs in. The contract:

* empty or blank text gives ``[]``;
* text that fits gives exactly ``[text]``;
* longer text is cut on sentence boundaries (those of :mod:`xlidx.pipeline.sentences`)
  and the sentences are packed greedily into
  passages up to the limit; a sentence longer than the limit is cut between words, and a
  word longer than the limit between characters;
* every passage is a slice of the text (stripped of surrounding whitespace), in order, so
  the passages together hold every non-whitespace character of the input: nothing is ever
  truncated.

Token counts are measured, not assumed additive: each packed passage is re-counted and
split further if the tokenizer counts the joined text differently from its parts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

#: Counts the tokens of each text, in one batched call.
TokenCounter = Callable[[Sequence[str]], Sequence[int]]

_WORD = re.compile(r"\S+")


class _Unit(NamedTuple):
    start: int
    end: int
    tokens: int


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, whitespace trimmed, empty ones dropped.

    Sentences are those of :func:`xlidx.pipeline.sentences.segment` (the translation stage's
    splitter, which knows abbreviations and CJK stops); long ones are not wrapped here.
    """
    from xlidx.pipeline.sentences import segment

    spans: list[tuple[int, int]] = []
    pos = 0
    for seg in segment(text, max_chars=max(1, len(text))):
        if seg.is_sentence:
            _add_trimmed(spans, text, pos, pos + len(seg.text))
        pos += len(seg.text)
    return spans


def split_passages(text: str, *, max_tokens: int, count_tokens: TokenCounter) -> list[str]:
    """Cut ``text`` into passages of at most ``max_tokens`` tokens as ``count_tokens`` counts.

    ``count_tokens`` should count exactly what the encoder will see (prompt and special
    tokens included) so that ``max_tokens`` can be the model's own limit.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if not text.strip():
        return []
    if count_tokens([text])[0] <= max_tokens:
        return [text]
    units: list[_Unit] = []
    spans = sentence_spans(text)
    counts = count_tokens([text[a:b] for a, b in spans])
    for (a, b), n in zip(spans, counts, strict=True):
        if n <= max_tokens:
            units.append(_Unit(a, b, n))
        else:
            units.extend(_split_long(text, a, b, max_tokens, count_tokens))
    return [text[a:b] for a, b in _pack_checked(text, units, max_tokens, count_tokens)]


def _add_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        a = start + (len(piece) - len(piece.lstrip()))
        spans.append((a, a + len(stripped)))


def _split_long(text: str, start: int, end: int, limit: int, count: TokenCounter) -> list[_Unit]:
    """Units of one over-long sentence: its words, and character windows of over-long words."""
    words = [(start + m.start(), start + m.end()) for m in _WORD.finditer(text[start:end])]
    counts = count([text[a:b] for a, b in words])
    units: list[_Unit] = []
    for (a, b), n in zip(words, counts, strict=True):
        if n <= limit:
            units.append(_Unit(a, b, n))
        else:
            units.extend(_char_windows(text, a, b, limit, count))
    return units


def _char_windows(text: str, start: int, end: int, limit: int, count: TokenCounter) -> list[_Unit]:
    """Cut ``text[start:end]`` into the longest character windows that fit (binary search)."""
    units: list[_Unit] = []
    a = start
    while a < end:
        lo, hi = a + 1, end  # a window always takes at least one character
        best = lo
        while lo <= hi:
            mid = (lo + hi) // 2
            if count([text[a:mid]])[0] <= limit:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        units.append(_Unit(a, best, count([text[a:best]])[0]))
        a = best
    return units


def _pack_checked(
    text: str, units: list[_Unit], limit: int, count: TokenCounter
) -> list[tuple[int, int]]:
    """Pack units greedily, then re-count each passage and split any that overflows."""
    groups: list[list[_Unit]] = []
    total = 0
    for unit in units:
        if groups and total + unit.tokens <= limit:
            groups[-1].append(unit)
            total += unit.tokens
        else:
            groups.append([unit])
            total = unit.tokens
    spans = [(g[0].start, g[-1].end) for g in groups]
    actual = count([text[a:b] for a, b in spans])
    out: list[tuple[int, int]] = []
    for group, span, n in zip(groups, spans, actual, strict=True):
        if n <= limit or len(group) == 1:
            out.append(span)
        else:  # the tokenizer counts the join differently from its parts: halve and retry
            mid = len(group) // 2
            out.extend(_pack_checked(text, group[:mid], limit, count))
            out.extend(_pack_checked(text, group[mid:], limit, count))
    return out
