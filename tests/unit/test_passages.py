"""Passage splitting: pure functions over a token counter (no model needed)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence

import pytest

from xlidx.pipeline.passages import sentence_spans, split_passages
from xlidx.pipeline.sentences import split_sentences


def words(texts: Sequence[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def chars(texts: Sequence[str]) -> list[int]:
    """Counts the spaces of a join too: the join of two parts costs more than the parts."""
    return [len(t) for t in texts]


def wordpieces(texts: Sequence[str]) -> list[int]:
    """A WordPiece-like count: 2 special tokens, then one token per 4 characters of a word."""
    return [2 + sum(math.ceil(len(w) / 4) for w in t.split()) for t in texts]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def assert_valid(text: str, passages: list[str], limit: int, count: object) -> None:
    assert callable(count)
    assert all(n <= limit for n in count(passages)), passages
    assert squash("".join(passages)) == squash(text), "text was lost or reordered"
    if passages == [text]:
        return
    pos = 0
    for p in passages:  # each passage is a trimmed slice of the text, in order
        assert p and p == p.strip()
        pos = text.index(p, pos) + len(p)


def test_empty_and_blank_text_give_no_passage() -> None:
    assert split_passages("", max_tokens=5, count_tokens=words) == []
    assert split_passages(" \n\t ", max_tokens=5, count_tokens=words) == []


def test_short_text_is_one_passage_equal_to_the_text() -> None:
    text = "  The cat sleeps.\nLe chat dort.  "
    assert split_passages(text, max_tokens=50, count_tokens=words) == [text]


def test_long_text_is_packed_on_sentence_boundaries() -> None:
    text = "One two three. Four five six! Seven eight nine? Ten eleven twelve.\nThirteen."
    passages = split_passages(text, max_tokens=6, count_tokens=words)
    assert passages == [
        "One two three. Four five six!",
        "Seven eight nine? Ten eleven twelve.",
        "Thirteen.",
    ]


def test_a_sentence_longer_than_the_limit_is_cut_between_words() -> None:
    text = "a b c d e f g h i j"
    assert split_passages(text, max_tokens=4, count_tokens=words) == [
        "a b c d",
        "e f g h",
        "i j",
    ]


def test_a_word_longer_than_the_limit_is_cut_between_characters() -> None:
    text = "猫が寝ている" * 5  # no spaces, no sentence end
    passages = split_passages(text, max_tokens=7, count_tokens=chars)
    assert "".join(passages) == text
    assert [len(p) for p in passages] == [7, 7, 7, 7, 2]


def test_a_join_that_counts_more_than_its_parts_is_split_again() -> None:
    # chars() counts the space between two sentences, which the packer's sum does not know
    text = "aaaa. bbbb. cccc. dddd."
    passages = split_passages(text, max_tokens=10, count_tokens=chars)
    assert_valid(text, passages, 10, chars)
    assert passages == ["aaaa.", "bbbb.", "cccc.", "dddd."]


def test_invalid_limit() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        split_passages("x", max_tokens=0, count_tokens=words)


def test_sentence_spans() -> None:
    text = "Hello world. 3.14 is pi!  Done\n\nNext line 「こんにちは。」世界\uff01ok"
    assert split_sentences(text) == [
        "Hello world.",
        "3.14 is pi!",
        "Done",
        "Next line 「こんにちは。」",
        "世界\uff01",
        "ok",
    ]
    for a, b in sentence_spans(text):
        assert text[a:b] == text[a:b].strip() != ""


@pytest.mark.parametrize("seed", range(40))
def test_random_texts_keep_every_character(seed: int) -> None:
    rng = random.Random(seed)
    vocab = ["le", "chat", "dort", "Katze", "schläft", "supercalifragilistic", "猫が寝ている", "x"]
    enders = [" ", " ", " ", ". ", "! ", "? ", "\n", "。", ", "]
    text = "".join(rng.choice(vocab) + rng.choice(enders) for _ in range(rng.randint(1, 120)))
    counter = rng.choice([words, chars, wordpieces])
    limit = rng.randint(3 if counter is wordpieces else 1, 40)
    passages = split_passages(text, max_tokens=limit, count_tokens=counter)
    assert_valid(text, passages, limit, counter)


# Long texts in scripts with other sentence marks: Devanagari's danda, the Arabic question mark
# and the Urdu full stop, and the scripts that mark sentences with spaces (Thai) or with few
# marks and spaces between phrases (Khmer, Myanmar). Each is split, and nothing is lost.
SCRIPT_SENTENCES = {
    "hi": ("यह एक लंबा वाक्य है जो कई शब्दों से बना है।", "क्या आप आज बाज़ार जाएँगे?"),
    "ar": ("ذهب الطالب إلى المكتبة في الصباح الباكر.", "هل قرأت الكتاب الجديد؟"),
    "ur": ("یہ ایک لمبا جملہ ہے جو کئی الفاظ پر مشتمل ہے۔", "کیا آپ کل آئیں گے؟"),
    "th": ("วันนี้อากาศดีมาก", "เราไปเดินเล่นที่สวนสาธารณะกัน"),
    "km": ("ខ្ញុំស្រឡាញ់ប្រទេសកម្ពុជា។", "ថ្ងៃនេះអាកាសធាតុល្អណាស់ យើងទៅដើរលេង"),
    "my": ("ကျွန်တော် ကျောင်းသား ဖြစ်ပါတယ်။", "ဒီနေ့ ရာသီဥတု ကောင်းပါတယ်။"),
}


@pytest.mark.parametrize("code", sorted(SCRIPT_SENTENCES))
def test_long_text_in_every_script_is_split_and_never_truncated(code: str) -> None:
    a, b = SCRIPT_SENTENCES[code]
    text = " ".join([a, b] * 40)
    assert len(split_sentences(text)) >= 80  # every sentence (and phrase) found
    passages = split_passages(text, max_tokens=60, count_tokens=chars)
    assert len(passages) > 10
    assert_valid(text, passages, 60, chars)
    assert squash("".join(passages)) == squash(text)  # not one character lost
    for p in passages:  # cuts fall at the sentence marks or spaces, never inside a word
        start = text.index(p)
        assert start == 0 or text[start - 1].isspace() or text[start - 1] in "।؟۔?.។။"
