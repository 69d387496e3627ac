"""The translate stage: batched machine translation with installed argos packages.

:class:`Translator` reads argos packages (a CTranslate2 model plus a sentencepiece model)
straight from the packages directory; it never calls argostranslate's own ``translate()``
(which translates one text at a time and may download a sentence splitter). Instead it

1. cuts every text into sentences with the offline splitter (:mod:`xlidx.pipeline.sentences`),
2. collects the distinct sentences of *all* texts, skipping those already in the cache,
3. sentencepiece-encodes them, sorts them by length and translates them in
   ``ctranslate2.Translator.translate_batch`` calls of many sentences each,
4. decodes them and puts every text back together with its original separators.

A pair without a package of its own goes through English (de→en, then en→es). Models load
once per pair, on first use, and are reused. The constructor does no I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlidx.errors import ModelError
from xlidx.pipeline.sentences import MAX_CHARS, Segment, segment
from xlidx.pipeline.translation_cache import TranslationCache
from xlidx.translation_packages import (
    InstalledPackage,
    check_lang_code,
    latest_by_pair,
    list_installed,
)

PIVOT = "en"
DEVICES = ("auto", "cpu", "cuda")
_CALL_FACTOR = 8  # sentences per translate_batch call = max_batch_size * this


@dataclass(frozen=True)
class _Loaded:
    package: InstalledPackage
    translator: Any  # ctranslate2.Translator
    processor: Any  # sentencepiece.SentencePieceProcessor


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _pair_label(pair: tuple[str, str]) -> str:
    return f"{pair[0]}→{pair[1]}"


class Translator:
    """Translate batches of texts between languages with installed argos packages.

    ``packages_dir`` defaults to argos's (``$ARGOS_PACKAGES_DIR`` or
    ``~/.local/share/argos-translate/packages``). ``device`` is ``"auto"`` (CUDA when
    CTranslate2 sees a GPU), ``"cpu"`` or ``"cuda"``; models compute in int8 on CPU and
    float16 on CUDA unless ``compute_type`` says otherwise. ``cache`` (optional) remembers
    sentence translations across runs and processes.

    Sentences longer than ``max_sentence_chars`` are cut before translation, and inputs are
    truncated to ``max_input_length`` pieces (Marian models know 512 positions), so one
    pathological sentence cannot fail a batch.
    """

    def __init__(
        self,
        packages_dir: Path | None = None,
        *,
        device: str = "auto",
        cache: TranslationCache | None = None,
        beam_size: int = 2,
        max_batch_size: int = 32,
        compute_type: str | None = None,
        intra_threads: int = 0,
        max_decoding_length: int = 256,
        max_input_length: int = 510,
        max_sentence_chars: int = MAX_CHARS,
    ) -> None:
        if device not in DEVICES:
            raise ModelError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
        for name, value in (
            ("beam_size", beam_size),
            ("max_batch_size", max_batch_size),
            ("max_decoding_length", max_decoding_length),
            ("max_input_length", max_input_length),
            ("max_sentence_chars", max_sentence_chars),
        ):
            if value < 1:
                raise ModelError(f"{name} must be at least 1, got {value}")
        self.packages_dir = packages_dir
        self.device = device
        self.cache = cache
        self.beam_size = beam_size
        self.max_batch_size = max_batch_size
        self.compute_type = compute_type
        self.intra_threads = intra_threads
        self.max_decoding_length = max_decoding_length
        self.max_input_length = max_input_length
        self.max_sentence_chars = max_sentence_chars
        self.model_calls = 0  # translate_batch calls made
        self.sentences_translated = 0  # sentences that went through a model
        self._packages: dict[tuple[str, str], InstalledPackage] | None = None
        self._loaded: dict[tuple[str, str], _Loaded] = {}
        self._used: dict[tuple[str, str], InstalledPackage] = {}
        self._lock = threading.RLock()

    # -- packages and routes -------------------------------------------------------------

    def installed(self) -> dict[tuple[str, str], InstalledPackage]:
        """The newest installed package per (from, to) pair, scanned once."""
        with self._lock:
            if self._packages is None:
                self._packages = latest_by_pair(list_installed(self.packages_dir))
            return dict(self._packages)

    def refresh(self) -> None:
        """Forget the scanned packages and loaded models (after installing new packages)."""
        with self._lock:
            self._packages = None
            self._loaded.clear()

    def pairs(self) -> set[tuple[str, str]]:
        """The (from, to) pairs installed packages translate directly."""
        return set(self.installed())

    def route(self, src: str, tgt: str) -> list[InstalledPackage]:
        """The packages that take ``src`` to ``tgt``: one direct, or two through English.

        Same language gives ``[]``. Raises ModelError when no route exists.
        """
        check_lang_code(src)
        check_lang_code(tgt)
        if src == tgt:
            return []
        packages = self.installed()
        if (src, tgt) in packages:
            return [packages[(src, tgt)]]
        if PIVOT not in (src, tgt) and (src, PIVOT) in packages and (PIVOT, tgt) in packages:
            return [packages[(src, PIVOT)], packages[(PIVOT, tgt)]]
        have = ", ".join(_pair_label(p) for p in sorted(packages)) or "none"
        raise ModelError(
            f"no translation package for {src}→{tgt} (installed: {have}); "
            f"install one with `xlidx models install-translation {src} {tgt}`"
        )

    def describe(self) -> list[dict[str, str]]:
        """The packages used so far (from, to, version, name), for an index's ``_meta``."""
        with self._lock:
            return [self._used[pair].describe() for pair in sorted(self._used)]

    # -- translation ---------------------------------------------------------------------

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        """Translate every text from ``src`` to ``tgt``; the result is in the same order.

        Sentences of all texts are batched together; empty texts stay empty and the same
        language gives the texts back unchanged.
        """
        if isinstance(texts, str):
            raise TypeError("translate() takes a sequence of texts, not one string")
        hops = self.route(src, tgt)
        texts = list(texts)
        if not hops:
            return texts
        segmented = [segment(t, max_chars=self.max_sentence_chars) for t in texts]
        sources = list(dict.fromkeys(s.text for segs in segmented for s in segs if s.is_sentence))
        current = {s: s for s in sources}
        for package in hops:
            done = self._translate_sentences(list(dict.fromkeys(current.values())), package)
            current = {s: done[t] for s, t in current.items()}
        with self._lock:
            self._used.update((p.pair, p) for p in hops)
        return [_reassemble(segs, current) for segs in segmented]

    def translate_many(self, requests: Sequence[tuple[str, str, str]]) -> list[str]:
        """Translate (text, src, tgt) triples of mixed pairs; one batch per pair."""
        groups: dict[tuple[str, str], list[int]] = {}
        for i, (_, src, tgt) in enumerate(requests):
            groups.setdefault((src, tgt), []).append(i)
        for src, tgt in groups:  # fail before any work when a pair cannot be served
            self.route(src, tgt)
        out = [""] * len(requests)
        for (src, tgt), indices in groups.items():
            translated = self.translate([requests[i][0] for i in indices], src, tgt)
            for i, text in zip(indices, translated, strict=True):
                out[i] = text
        return out

    def _model_tag(self, package: InstalledPackage) -> str:
        return f"{package.name}@{package.version}/beam{self.beam_size}"

    def _translate_sentences(
        self, sentences: list[str], package: InstalledPackage
    ) -> dict[str, str]:
        """``{sentence: translation}`` for distinct sentences, from the cache or the model."""
        tag = self._model_tag(package)
        found: dict[str, str] = {}
        if self.cache is not None:
            found = self.cache.lookup(sentences, package.from_code, package.to_code, tag)
        todo = [s for s in sentences if s not in found]
        if todo:
            fresh = dict(zip(todo, self._run_model(todo, package), strict=True))
            if self.cache is not None:
                self.cache.store(fresh, package.from_code, package.to_code, tag)
            found.update(fresh)
        return found

    def _run_model(self, sentences: list[str], package: InstalledPackage) -> list[str]:
        """Translate sentences with the package's model, in length-sorted batches."""
        loaded = self._load(package)
        pieces: list[list[str]] = loaded.processor.encode(sentences, out_type=str)
        order = sorted(range(len(sentences)), key=lambda i: len(pieces[i]))
        out = list(sentences)  # a sentence with no pieces stays as it is
        order = [i for i in order if pieces[i]]
        step = self.max_batch_size * _CALL_FACTOR
        prefix = package.target_prefix
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            try:
                results = loaded.translator.translate_batch(
                    [pieces[i] for i in chunk],
                    target_prefix=[[prefix] for _ in chunk] if prefix else None,
                    beam_size=self.beam_size,
                    max_batch_size=self.max_batch_size,
                    max_decoding_length=self.max_decoding_length,
                    max_input_length=self.max_input_length,
                    replace_unknowns=True,
                )
            except (RuntimeError, ValueError) as exc:
                raise ModelError(
                    f"translation with package {package.name} failed: {_one_line(exc)}"
                ) from None
            for i, result in zip(chunk, results, strict=True):
                out[i] = _decode(loaded.processor, result.hypotheses[0], prefix)
            with self._lock:
                self.model_calls += 1
                self.sentences_translated += len(chunk)
        return out

    # -- model loading -------------------------------------------------------------------

    def resolved_device(self) -> str:
        """``cpu`` or ``cuda``: the device models load on."""
        if self.device != "auto":
            return self.device
        import ctranslate2  # type: ignore[import-untyped]

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"

    def _load(self, package: InstalledPackage) -> _Loaded:
        """The loaded model of ``package`` (loaded on first use, then reused)."""
        with self._lock:
            loaded = self._loaded.get(package.pair)
            if loaded is not None and loaded.package == package:
                return loaded
            loaded = _load_package(
                package,
                device=self.resolved_device(),
                compute_type=self.compute_type,
                intra_threads=self.intra_threads,
            )
            self._loaded[package.pair] = loaded
            return loaded


def _load_package(
    package: InstalledPackage, *, device: str, compute_type: str | None, intra_threads: int
) -> _Loaded:
    """Load a package's CTranslate2 model and sentencepiece processor; ModelError if broken."""
    import ctranslate2
    import sentencepiece

    model_dir = package.path / "model"
    spm_path = package.path / "sentencepiece.model"
    if not (model_dir / "model.bin").is_file():
        raise ModelError(f"translation package {package.name} has no model/model.bin")
    if not spm_path.is_file():
        kind = " (BPE packages are not supported)" if (package.path / "bpe.model").exists() else ""
        raise ModelError(f"translation package {package.name} has no sentencepiece.model{kind}")
    compute = compute_type or ("float16" if device == "cuda" else "int8")
    try:
        translator = ctranslate2.Translator(
            str(model_dir), device=device, compute_type=compute, intra_threads=intra_threads
        )
        processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(
            f"cannot load translation package {package.name} ({package.path}): {_one_line(exc)}"
        ) from None
    return _Loaded(package, translator, processor)


def _decode(processor: Any, pieces: list[str], prefix: str) -> str:
    """Sentencepiece pieces back to text, without the target prefix token."""
    if prefix and pieces and pieces[0] == prefix:
        pieces = pieces[1:]
    text: str = processor.decode_pieces(pieces)
    return text.replace("▁", " ").strip()


def _reassemble(segments: list[Segment], translations: dict[str, str]) -> str:
    """Put a text back together: translated sentences, original separators."""
    return "".join(translations[s.text] if s.is_sentence else s.text for s in segments)
