"""Language detection without language models: words, language sets, priors, Han rules."""

from __future__ import annotations

import pytest

from xlidx.errors import ConfigError
from xlidx.pipeline import detect, langwords
from xlidx.pipeline.detect import (
    ALL_LANGUAGES,
    DEFAULT_LANGUAGES,
    languages_label,
    parse_languages,
    resolve_languages,
)
from xlidx.pipeline.langwords import evidence, text_words


def test_all_languages_are_linguas() -> None:
    from lingua import Language

    assert sorted(lang.iso_code_639_1.name.lower() for lang in Language.all()) == list(
        ALL_LANGUAGES
    )
    assert len(ALL_LANGUAGES) == len(set(ALL_LANGUAGES)) == 75


def test_default_means_all() -> None:
    assert DEFAULT_LANGUAGES == ()
    assert resolve_languages(DEFAULT_LANGUAGES) == ALL_LANGUAGES
    assert resolve_languages(("fr", "en")) == ("en", "fr")
    assert detect.Detector().codes == ALL_LANGUAGES
    assert detect.Detector(("de", "en")).codes == ("de", "en")


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((), ()),
        (("all",), ()),
        (("en", "*"), ()),
        ((" EN", "fr", "en", ""), ("en", "fr")),
        (("th", "vi", "el"), ("th", "vi", "el")),
    ],
)
def test_parse_languages(codes: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert parse_languages(codes) == expected


@pytest.mark.parametrize("bad", ["xx", "english", "zz", "e1"])
def test_parse_languages_rejects_unknown(bad: str) -> None:
    with pytest.raises(ConfigError, match="unknown language code"):
        parse_languages(["en", bad])


def test_languages_label() -> None:
    assert languages_label(()) == ["all"]
    assert languages_label(ALL_LANGUAGES) == ["all"]
    assert languages_label(("fr", "en")) == ["en", "fr"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "12345 67.8 -3,5 %",
        "!!! ??? ... — …",
        "🙂🎉😀 👍🏽",
        "https://example.com/path?q=1&lang=en",
        "www.example.org",
        "mailto:someone@example.org user@example.org",
        "getUserById(42)",
        "my_var_name = compute(x) + 1",
        "np.array([1, 2]).sum()",
        "src/xlidx/pipeline/detect.py",
        "H2O 3D mp3 4K",
        "ok",
        "12:30 +33 (0)6 12 34 56 78",
    ],
)
def test_texts_without_language_evidence(text: str) -> None:
    assert evidence(text_words(text)) < detect._MIN_LETTERS


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, world!", ["hello", "world"]),
        ("see https://example.com for getUserById docs", ["see", "for", "docs"]),
        ("«Bonjour», dit-il.", ["bonjour", "dit-il"]),
        ("dov'è la stazione?", ["dov'è", "la", "stazione"]),
        ("COVID-19 vaccine", ["covid", "vaccine"]),
        ("दोपहर के खाने में", ["दोपहर", "के", "खाने", "में"]),  # vowel signs stay in words
        ("می\u200cخواهم بروم", ["می\u200cخواهم", "بروم"]),  # the Persian ZWNJ too
        ("今日は晴れです。明日は雨！", ["今日は晴れです", "明日は雨"]),
        ("我有3个苹果", ["我有", "个苹果"]),  # digits cut CJK runs but do not drop them
    ],
)
def test_text_words(text: str, words: list[str]) -> None:
    assert text_words(text) == words


def test_evidence_counts_cjk_as_words() -> None:
    assert evidence(["東京"]) == 6
    assert evidence(["서울"]) == 6
    assert evidence(["ok"]) == 2
    assert evidence(["नमस्ते"]) == 4  # letters, not vowel signs or viramas


@pytest.mark.parametrize(
    ("text", "prior", "expected"),
    [
        ("火车站在哪里", (0.0, 0.0), ("zh", "han:zh-script")),  # 车: Simplified only
        ("台灣的天氣怎麼樣", (0.0, 0.0), ("zh", "han:zh-script")),  # 灣 氣 麼: rare in Japanese
        ("我們這裡", (0.0, 0.0), ("zh", "han:zh-script")),
        ("沖縄 格安航空券", (0.0, 0.0), ("ja", "han:ja-script")),  # 縄: not GB2312
        ("博物館 開館時間", (0.0, 0.0), ("ja", "han:ja-script")),
        ("博物館 開館時間", (2.0, 1.0), ("zh", "han:prior")),  # Traditional, in a zh index
        ("中国 北京大学", (0.0, 0.0), ("zh", "han:shared")),  # both write these
        ("中国 北京大学", (1.0, 2.0), ("ja", "han:prior")),
    ],
)
def test_han_language(text: str, prior: tuple[float, float], expected: tuple[str, str]) -> None:
    assert langwords.han_language(text_words(text), *prior) == expected


def test_han_only() -> None:
    assert langwords.han_only(text_words("博物館 開館時間"))
    assert not langwords.han_only(text_words("東京タワー"))
    assert not langwords.han_only(text_words("서울 東京"))
    assert not langwords.han_only(text_words("hello world"))


def test_log_prior() -> None:
    import numpy as np

    codes = ("de", "en", "fr", "ja")
    assert not detect._log_prior(codes, {}).any()
    assert not detect._log_prior(codes, {"und": 5}).any()
    one = np.exp(detect._log_prior(codes, {"en": 1000, "und": 50}))
    assert one.tolist() == [1.0, 21.0, 1.0, 1.0]
    even = np.exp(detect._log_prior(codes, {"en": 10, "fr": 10}))
    assert even.tolist() == [1.0, 21.0, 21.0, 1.0]  # the same odds, however many languages
    skewed = np.exp(detect._log_prior(codes, {"en": 30, "fr": 10}))
    assert skewed.tolist() == pytest.approx([1.0, 31.0, 11.0, 1.0])
