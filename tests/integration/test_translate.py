"""The translate stage on real argos packages built by the session fixtures (no mocks).

These load real CTranslate2 models but need no server, so they carry no marker.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.argos_builder import build_argos_package, corrupt_package
from tests.fixtures.translation import (
    DE_ES_PAIRS,
    EN_FR_PAIRS,
    FR_EN_PAIRS,
    ArgosPackages,
)
from xlidx.errors import ModelError
from xlidx.pipeline.translate import Translator
from xlidx.pipeline.translation_cache import TranslationCache
from xlidx.translation_packages import install_from_file, list_installed

FR_EN = dict(FR_EN_PAIRS)


def documents(n: int) -> tuple[list[str], list[str]]:
    """n French documents of several sentences each, and their exact English translations."""
    pairs = list(FR_EN_PAIRS)
    docs, expected = [], []
    for i in range(n):
        chosen = [pairs[(i + k) % len(pairs)] for k in range(1 + i % 4)]
        sep = "\n" if i % 3 == 0 else " "
        docs.append(sep.join(fr for fr, _ in chosen))
        expected.append(sep.join(en for _, en in chosen))
    return docs, expected


@pytest.fixture
def translator(argos_packages_dir: Path) -> Translator:
    return Translator(argos_packages_dir, device="cpu", max_batch_size=4)


def test_constructor_does_no_io(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    t = Translator(missing, cache=TranslationCache(missing / "c.sqlite3"))
    assert not missing.exists()
    assert t.pairs() == set()


def test_pairs_and_routes(translator: Translator) -> None:
    assert translator.pairs() == {("fr", "en"), ("en", "fr"), ("de", "en"), ("en", "es")}
    assert [p.pair for p in translator.route("fr", "en")] == [("fr", "en")]
    assert [p.pair for p in translator.route("de", "es")] == [("de", "en"), ("en", "es")]
    assert translator.route("fr", "fr") == []


def test_exact_translations_of_single_sentences(translator: Translator) -> None:
    sources = [fr for fr, _ in FR_EN_PAIRS]
    assert translator.translate(sources, "fr", "en") == [en for _, en in FR_EN_PAIRS]
    assert translator.translate([en for en, _ in EN_FR_PAIRS], "en", "fr") == [
        fr for _, fr in EN_FR_PAIRS
    ]


def test_batches_sentences_across_documents_in_order(translator: Translator) -> None:
    docs, expected = documents(25)
    assert translator.translate(docs, "fr", "en") == expected
    # 6 distinct sentences in 25 documents: each went through the model once
    assert translator.sentences_translated == len(FR_EN_PAIRS)
    assert translator.model_calls == 1


def test_many_distinct_sentences_take_several_batch_calls(argos_packages_dir: Path) -> None:
    t = Translator(argos_packages_dir, device="cpu", max_batch_size=2)
    docs = [f"{fr} Doc {i}." for i in range(40) for fr in (FR_EN_PAIRS[i % 6][0],)]
    out = t.translate(docs, "fr", "en")
    assert len(out) == 40
    assert all(o.startswith(FR_EN[FR_EN_PAIRS[i % 6][0]] + " ") for i, o in enumerate(out))
    assert t.model_calls >= 2  # 46 distinct sentences, 16 per call


def test_empty_texts_and_separators_are_kept(translator: Translator) -> None:
    texts = ["", "  Le chat dort.\n\n  Merci beaucoup !  ", "\n", "Le chat dort."]
    assert translator.translate(texts, "fr", "en") == [
        "",
        "  The cat sleeps.\n\n  Thank you very much!  ",
        "\n",
        "The cat sleeps.",
    ]
    assert translator.translate([], "fr", "en") == []


def test_same_language_is_identity_without_models(translator: Translator) -> None:
    assert translator.translate(["Le chat dort.", ""], "fr", "fr") == ["Le chat dort.", ""]
    assert translator.model_calls == 0
    assert translator.describe() == []


def test_pivot_through_english(translator: Translator) -> None:
    sources = [de for de, _ in DE_ES_PAIRS]
    doc = " ".join(sources)
    out = translator.translate([*sources, doc], "de", "es")
    assert out == [es for _, es in DE_ES_PAIRS] + [" ".join(es for _, es in DE_ES_PAIRS)]
    assert [d["to"] for d in translator.describe()] == ["en", "es"]  # two packages used
    assert translator.model_calls == 2  # one batch per hop


def test_translate_many_groups_mixed_pairs(translator: Translator) -> None:
    de, es = DE_ES_PAIRS[0]
    requests = [
        ("Le chat dort.", "fr", "en"),
        ("The cat sleeps.", "en", "fr"),
        (de, "de", "es"),
        ("Merci beaucoup !", "fr", "en"),
        ("unchanged", "en", "en"),
    ]
    assert translator.translate_many(requests) == [
        "The cat sleeps.",
        "Le chat dort.",
        es,
        "Thank you very much!",
        "unchanged",
    ]
    assert {(d["from"], d["to"]) for d in translator.describe()} == {
        ("fr", "en"),
        ("en", "fr"),
        ("de", "en"),
        ("en", "es"),
    }


def test_describe_lists_used_packages(translator: Translator) -> None:
    translator.translate(["Le chat dort."], "fr", "en")
    assert translator.describe() == [
        {"from": "fr", "to": "en", "version": "0.0.1", "name": "translate-fr_en-0_0_1"}
    ]
    json.dumps(translator.describe())


def test_cache_hits_skip_the_model(argos_packages_dir: Path, tmp_path: Path) -> None:
    docs, expected = documents(10)
    path = tmp_path / "cache.sqlite3"
    first = Translator(argos_packages_dir, device="cpu", cache=TranslationCache(path))
    assert first.translate(docs, "fr", "en") == expected
    assert first.cache is not None
    assert (first.cache.hits, first.cache.misses) == (0, len(FR_EN_PAIRS))
    assert first.translate(docs, "fr", "en") == expected
    assert first.cache.hits == len(FR_EN_PAIRS)
    assert first.model_calls == 1

    # a second translator sharing the file never loads a model
    second = Translator(argos_packages_dir, device="cpu", cache=TranslationCache(path))
    assert second.translate(docs, "fr", "en") == expected
    assert second.model_calls == 0
    assert second._loaded == {}
    assert second.cache is not None
    assert (second.cache.hits, second.cache.misses) == (len(FR_EN_PAIRS), 0)
    first.cache.close()
    second.cache.close()


def test_cache_on_pivot_stores_each_hop(argos_packages_dir: Path, tmp_path: Path) -> None:
    cache = TranslationCache(tmp_path / "c.sqlite3")
    t = Translator(argos_packages_dir, device="cpu", cache=cache)
    de, es = DE_ES_PAIRS[1]
    assert t.translate([de], "de", "es") == [es]
    assert len(cache) == 2  # de→en and en→es
    assert Translator(argos_packages_dir, device="cpu", cache=cache).translate(
        [de], "de", "es"
    ) == [es]
    cache.close()


def test_models_load_once_and_are_reused(translator: Translator) -> None:
    translator.translate(["Le chat dort."], "fr", "en")
    loaded = translator._loaded[("fr", "en")]
    translator.translate(["Merci beaucoup !"], "fr", "en")
    assert translator._loaded[("fr", "en")] is loaded


def test_unknown_pair_is_a_one_line_model_error(translator: Translator) -> None:
    with pytest.raises(ModelError) as info:
        translator.translate(["Hallo"], "de", "ja")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("no translation package for de→ja (installed: de→en, en→es")
    assert "xlidx models install-translation de ja" in message
    with pytest.raises(ModelError, match="no translation package for es→fr"):
        translator.translate_many([("Hola", "es", "fr"), ("Le chat dort.", "fr", "en")])
    assert translator.model_calls == 0  # translate_many checks every pair first


@pytest.mark.parametrize(("src", "tgt"), [("FR", "en"), ("fr", "english"), ("", "en")])
def test_bad_language_codes(translator: Translator, src: str, tgt: str) -> None:
    with pytest.raises(ModelError, match="invalid language code"):
        translator.translate(["x"], src, tgt)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ModelError, match="unknown device"):
        Translator(device="tpu")
    with pytest.raises(ModelError, match="beam_size"):
        Translator(beam_size=0)


def test_a_single_string_is_refused(translator: Translator) -> None:
    with pytest.raises(TypeError):
        translator.translate("Le chat dort.", "fr", "en")


def test_corrupt_package_zip_is_a_model_error(tmp_path: Path) -> None:
    bad = corrupt_package(tmp_path)
    with pytest.raises(ModelError, match="not a zip archive") as info:
        install_from_file(bad, tmp_path / "packages")
    assert "\n" not in str(info.value)


def test_corrupt_installed_model_is_a_model_error(
    argos_packages: ArgosPackages, tmp_path: Path
) -> None:
    pk = tmp_path / "packages"
    pkg = install_from_file(argos_packages.files[("fr", "en")], pk)
    (pkg.path / "model" / "model.bin").write_bytes(b"garbage" * 10)
    t = Translator(pk, device="cpu")
    with pytest.raises(ModelError, match="cannot load translation package translate-fr_en") as info:
        t.translate(["Le chat dort."], "fr", "en")
    assert "\n" not in str(info.value)
    (pkg.path / "sentencepiece.model").unlink()
    with pytest.raises(ModelError, match=r"no sentencepiece\.model"):
        Translator(pk, device="cpu").translate(["Le chat dort."], "fr", "en")


def test_installed_layout_matches_argos(argos_packages: ArgosPackages) -> None:
    """argostranslate itself reads the packages xlidx installs."""
    from argostranslate.package import get_installed_packages

    theirs = {
        (p.from_code, p.to_code, p.package_version)
        for p in get_installed_packages([argos_packages.dir])
    }
    ours = {(p.from_code, p.to_code, p.version) for p in list_installed(argos_packages.dir)}
    assert theirs == ours
    assert len(ours) == 4


def test_builds_are_deterministic(tmp_path: Path) -> None:
    a = build_argos_package(tmp_path / "a", "de", "en")
    b = build_argos_package(tmp_path / "b", "de", "en")
    assert a.name == "translate-de_en-0_0_1.argosmodel"
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
        config = json.loads(zf.read("translate-de_en-0_0_1/model/config.json"))
    assert {n.split("/")[0] for n in names} == {"translate-de_en-0_0_1"}
    assert "translate-de_en-0_0_1/sentencepiece.model" in names
    assert config["add_source_eos"] is True


def test_random_package_translates_to_something(tmp_path: Path) -> None:
    pk = tmp_path / "packages"
    install_from_file(build_argos_package(tmp_path, "it", "en", seed=3), pk)
    t = Translator(pk, device="cpu", max_decoding_length=8)
    out = t.translate(["Il gatto dorme. Grazie mille!"], "it", "en")
    assert isinstance(out[0], str)
    shutil.rmtree(pk)


def test_long_documents(translator: Translator) -> None:
    many = " ".join(fr for fr, _ in FR_EN_PAIRS * 40)  # 240 sentences in one document
    assert translator.translate([many], "fr", "en") == [" ".join(en for _, en in FR_EN_PAIRS * 40)]
    # one 5,000-character "sentence" is cut into pieces the model can take
    run_on = "le chat dort et " * 320
    (out,) = translator.translate([run_on], "fr", "en")
    assert isinstance(out, str)
    assert out
