"""In-process ingest: read → validate → skip unchanged → detect → translate → embed → write.

The library API behind ``xlidx ingest``. Stages overlap in threads (see
:mod:`xlidx.pipeline.overlap`); each one is a plain function over a batch, so the Celery
workers can call the same functions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from xlidx.backends.base import Backend
from xlidx.documents import (
    DEFAULT_MAX_DOC_BYTES,
    DEFAULT_TEXT_FIELDS,
    DeadLetter,
    RawItem,
)
from xlidx.errors import ModelError
from xlidx.indices.manage import IndexState, ensure, update_meta
from xlidx.indices.spec import IndexSpec, VectorSpec, check_model, merge_packages
from xlidx.pipeline.detect import DEFAULT_LANGUAGES, DEFAULT_MIN_CONFIDENCE, Detector, detect_stage
from xlidx.pipeline.fingerprint import model_source, pipeline_fingerprint
from xlidx.pipeline.overlap import run_overlapped
from xlidx.pipeline.segments import segment_stage
from xlidx.pipeline.stages import (
    Batch,
    EmbedderLike,
    Translate,
    TranslatorLike,
    batches,
    embed_stage,
    skip_unchanged,
)
from xlidx.pipeline.write import BulkWriter


@dataclass(frozen=True)
class IngestOptions:
    index: str
    text_fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    translate_to: tuple[str, ...] = ()
    batch_size: int = 64
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    vector: VectorSpec = field(default_factory=VectorSpec)
    refresh: bool = True


@dataclass
class IngestSummary:
    read: int = 0
    indexed: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    index: str = ""
    languages: Counter[str] = field(default_factory=Counter)
    untranslated: Counter[str] = field(default_factory=Counter)  # "ja->en" -> documents
    dead_letter_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "dead_lettered": self.dead_lettered,
            "seconds": round(self.seconds, 3),
            "index": self.index,
            "languages": dict(self.languages),
            "untranslated": dict(self.untranslated),
            "dead_letter_file": self.dead_letter_file,
        }


class DeadLetterSink:
    """Appends dead letters to a JSONL file, created on the first one, flushed every line."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[str] | None = None
        self.kept: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        self.count += 1
        if self.path is None:
            self.kept.append(letter)
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(letter.to_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


Progress = Callable[[str, int], None]


def ingest(
    items: Iterable[RawItem],
    *,
    backend: Backend,
    options: IngestOptions,
    embedder: EmbedderLike,
    translator: TranslatorLike | None = None,
    dead_letters: DeadLetterSink | None = None,
    progress: Progress = lambda _stage, _n: None,
) -> IngestSummary:
    """Index ``items`` into the xlidx index ``options.index`` (created when missing)."""
    t0 = time.monotonic()
    sink = dead_letters or DeadLetterSink(None)
    embedding = embedder.describe()
    detector = Detector(options.languages, min_confidence=options.min_confidence)
    spec = IndexSpec(
        name=options.index,
        embedding={**embedding, "source": model_source(embedder)},
        text_fields=options.text_fields,
        languages=options.languages,
        translate_to=options.translate_to,
        vector=options.vector,
        detection=detector.describe(),
    )
    if options.translate_to and translator is None:
        raise ModelError("--translate-to needs a translator, but none was given")
    state, created = ensure(backend, spec)
    if not created:
        check_model(state.meta, embedding, options.index)
    translate = Translate(translator, options.translate_to)
    writer = BulkWriter(backend)
    summary = IngestSummary(index=state.index)
    fingerprint = pipeline_fingerprint(
        embedding, translate_to=options.translate_to, text_fields=options.text_fields
    )

    def check(batch: Batch) -> Batch:
        progress("checking", 0)
        return skip_unchanged(backend, state.index, batch)

    def detect_and_translate(batch: Batch) -> Batch:
        detect_stage(batch.prepared, detector)
        segment_stage(batch.prepared, detector)
        progress("translating" if options.translate_to else "detecting", 0)
        return translate(batch)

    def embed(batch: Batch) -> Batch:
        progress("embedding", 0)
        return embed_stage(embedder, detector)(batch)

    try:
        for batch in run_overlapped(
            batches(
                items,
                text_fields=options.text_fields,
                max_doc_bytes=options.max_doc_bytes,
                batch_size=options.batch_size,
                fingerprint=fingerprint,
            ),
            [check, detect_and_translate, embed],
        ):
            summary.read += batch.read
            summary.unchanged += batch.unchanged
            if batch.prepared:
                progress("writing", 0)
                res = writer.write(state.index, batch.prepared, model=embedder.name)
                summary.indexed += res.indexed
                batch.dead.extend(res.dead)
                written = {d.id for d in res.dead}
                summary.languages.update(
                    p.lang for p in batch.prepared if p.record.id not in written
                )
            for letter in batch.dead:
                sink.add(letter)
            summary.dead_lettered += len(batch.dead)
            progress("done", batch.read)
    finally:
        sink.close()
        summary.untranslated = translate.untranslated
        summary.seconds = time.monotonic() - t0
        summary.dead_letter_file = str(sink.path) if sink.path and sink.count else None
    if options.refresh and (summary.indexed or created):
        backend.refresh(state.index)
    record_translation(backend, state, translator, options.translate_to)
    return summary


def record_translation(
    backend: Backend,
    state: IndexState,
    translator: TranslatorLike | None,
    translate_to: Sequence[str],
) -> None:
    """Keep ``_meta`` true to what produced the index's translations."""
    x = dict(state.xlidx_meta)
    used = translator.describe() if translator is not None else []
    packages = merge_packages(x.get("translation_packages", []), used)
    targets = sorted(set(x.get("translate_to", [])) | set(translate_to))
    if packages != x.get("translation_packages", []) or targets != x.get("translate_to", []):
        x["translation_packages"] = packages
        x["translate_to"] = targets
        update_meta(backend, state, x)
