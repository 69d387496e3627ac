# ruff: noqa: RUF001 (CJK punctuation is the point)
"""The offline sentence splitter."""

from __future__ import annotations

import itertools

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
