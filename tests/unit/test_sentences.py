"""The offline sentence splitter."""

from __future__ import annotations

import itertools
import json
import unicodedata
from pathlib import Path

import pytest

from xlidx.pipeline.sentences import segment, split_sentences


def roundtrip(text: str, **kwargs: int) -> None:
    assert "".join(s.text for s in segment(text, **kwargs)) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello world. How are you? Fine!", ["Hello world.", "How are you?", "Fine!"]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("Ends without a period", ["Ends without a period"]),
        (
            "Le chat dort. Merci beaucoup ! Où est la gare ?",
            ["Le chat dort.", "Merci beaucoup !", "Où est la gare ?"],
        ),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("(It works.) Next one.", ["(It works.)", "Next one."]),
        ("Wait... What?! Really.", ["Wait...", "What?!", "Really."]),
        ("¿Qué tal? ¡Muy bien!", ["¿Qué tal?", "¡Muy bien!"]),
    ],
)
def test_latin_punctuation(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    roundtrip(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We met Dr. Smith and Mr. Jones today.", ["We met Dr. Smith and Mr. Jones today."]),
        ("Use fruit, e.g. Apples. Or i.e. Pears.", ["Use fruit, e.g. Apples.", "Or i.e. Pears."]),
        ("See No. 5 in Fig. 3 for details.", ["See No. 5 in Fig. 3 for details."]),
        ("I said no. Then I left.", ["I said no.", "Then I left."]),
        ("J. R. R. Tolkien wrote it.", ["J. R. R. Tolkien wrote it."]),
        ("The U.S. Army arrived.", ["The U.S. Army arrived."]),
        (
            "Pi is 3.14 roughly. It costs 2.50. Fine.",
            ["Pi is 3.14 roughly.", "It costs 2.50.", "Fine."],
        ),
        ("Visit example.com now. Thanks.", ["Visit example.com now.", "Thanks."]),
        ("It ended. and then lowercase follows.", ["It ended. and then lowercase follows."]),
        ("Die Zahl z.B. Fünf ist ungerade.", ["Die Zahl z.B. Fünf ist ungerade."]),
    ],
)
def test_abbreviations_and_numbers_do_not_cut(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    roundtrip(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "今日は晴れです。明日は雨でしょう！本当？",
            ["今日は晴れです。", "明日は雨でしょう！", "本当？"],
        ),
        ("我们走吧。 好的！", ["我们走吧。", "好的！"]),
        ("「はい。」と言った。次です。", ["「はい。」", "と言った。", "次です。"]),
        (
            "Mixed 中文。English here. 한국어입니다.",
            ["Mixed 中文。", "English here.", "한국어입니다."],
        ),
    ],
)
def test_cjk(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    roundtrip(text)


def test_newlines_are_boundaries_and_kept_as_separators() -> None:
    text = "  Title line\n\nFirst para. Second sentence.\r\n  last line without stop  \n"
    assert split_sentences(text) == [
        "Title line",
        "First para.",
        "Second sentence.",
        "last line without stop",
    ]
    segs = segment(text)
    roundtrip(text)
    assert [s.text for s in segs if not s.is_sentence] == ["  ", "\n\n", " ", "\r\n  ", "  \n"]
    # sentences and separators alternate
    assert all(a.is_sentence != b.is_sentence for a, b in itertools.pairwise(segs))


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "\t"])
def test_blank_text_has_no_sentence(text: str) -> None:
    assert split_sentences(text) == []
    roundtrip(text)


def test_very_long_text_is_cut_within_the_limit() -> None:
    sentence = ("word, " * 40 + "end ") * 20  # ~5,000 chars, one sentence, commas inside
    text = sentence + ". Short one."
    sentences = split_sentences(text, max_chars=200)
    assert all(0 < len(s) <= 200 for s in sentences)
    assert sentences[-1] == "Short one."
    roundtrip(text, max_chars=200)
    # cuts prefer clause marks, so pieces end at a comma here
    assert all(s.endswith(",") for s in sentences[:-2])


def test_long_text_without_spaces_is_hard_cut() -> None:
    text = "字" * 1234
    sentences = split_sentences(text, max_chars=500)
    assert [len(s) for s in sentences] == [500, 500, 234]
    roundtrip(text, max_chars=500)


def test_many_sentences_keep_order() -> None:
    text = " ".join(f"Sentence number {i}." for i in range(1000))
    assert split_sentences(text) == [f"Sentence number {i}." for i in range(1000)]


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        segment("x", max_chars=0)


LANGTEXTS = Path(__file__).resolve().parent.parent / "fixtures" / "langtexts"


def long_text(code: str, n: int = 8) -> str:
    paragraphs = json.loads((LANGTEXTS / f"{code}.json").read_text("utf-8"))["paragraphs"]
    return " ".join(paragraphs[:n])


def assert_cuts_between_words(text: str, sentences: list[str]) -> None:
    """Every cut is at whitespace or after punctuation, never inside a word."""
    pos = 0
    for s in sentences:
        start = text.index(s, pos)
        end = start + len(s)
        assert start == 0 or not text[start - 1].isalnum() or not s[0].isalnum(), s
        after = text[end : end + 1]
        assert not after or after.isspace() or not s[-1].isalnum() or not after.isalnum(), s
        assert unicodedata.category(s[0])[0] != "M", s  # no piece starts with a vowel sign
        pos = end


@pytest.mark.parametrize(
    ("code", "terminators"),
    [("hi", "।?"), ("ar", ".؟!"), ("el", ".;!"), ("fa", ".؟!"), ("he", ".?!")],
)
def test_long_text_in_other_scripts_is_cut_at_its_sentence_marks(
    code: str, terminators: str
) -> None:
    text = long_text(code)
    sentences = split_sentences(text)
    roundtrip(text)
    assert len(sentences) >= 16  # every paragraph has two or more sentences
    assert all(s[-1] in terminators for s in sentences), sentences
    assert max(len(s) for s in sentences) < 200
    assert_cuts_between_words(text, sentences)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("यह अच्छा है। वह भी।क्या?", ["यह अच्छा है।", "वह भी।", "क्या?"]),
        ("كيف حالك؟أنا بخير. شكرا!", ["كيف حالك؟", "أنا بخير.", "شكرا!"]),
        ("Τι ώρα είναι; Είναι δέκα.", ["Τι ώρα είναι;", "Είναι δέκα."]),
        ("Yes; No. Fine", ["Yes; No.", "Fine"]),  # a Latin semicolon does not cut
        ("Բարև։ Ինչպես ես։", ["Բարև։", "Ինչպես ես։"]),
    ],
)
def test_other_scripts_sentence_marks(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    roundtrip(text)


def test_thai_is_cut_at_its_spaces() -> None:
    text = long_text("th")
    sentences = split_sentences(text)
    roundtrip(text)
    assert sentences == text.split(" ")  # the fixture's spaces all end a clause
    assert split_sentences("วิธีทำแกงจืดง่าย ๆ อร่อยมาก") == ["วิธีทำแกงจืดง่าย ๆ", "อร่อยมาก"]
    assert split_sentences("ราคา 100 บาท ถูกมาก") == ["ราคา 100 บาท", "ถูกมาก"]


@pytest.mark.parametrize("code", ["hi", "ar", "th", "el"])
def test_long_text_wrapped_small_is_cut_between_words(code: str) -> None:
    """Down to the longest Thai clause (67 characters here): a longer one has no place to cut
    but inside a word, which only a dictionary could find; it is cut between letters."""
    text = long_text(code, 20)
    sentences = split_sentences(text, max_chars=70)
    roundtrip(text, max_chars=70)
    assert all(0 < len(s) <= 70 for s in sentences)
    assert_cuts_between_words(text, sentences)


@pytest.mark.parametrize("cluster", ["क्षि", "เก", "كَتَبَ"])
def test_hard_cuts_keep_letters_with_their_marks(cluster: str) -> None:
    text = cluster * 300
    sentences = split_sentences(text, max_chars=97)
    roundtrip(text, max_chars=97)
    assert all(0 < len(s) <= 97 for s in sentences)
    assert all(s.startswith(cluster[0]) for s in sentences), [s[:2] for s in sentences]
