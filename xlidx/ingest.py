"""In-process ingest: read → validate → skip unchanged → detect → translate → embed → write.

The library API behind ``xlidx ingest``. Stages overlap in threads (see
:mod:`xlidx.pipeline.overlap`); each one is a plain function over a batch, so the Celery
workers can call the same functions.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from xlidx.backends.base import Backend
from xlidx.config import DEFAULT_RETRY_FOR
from xlidx.documents import (
    DEFAULT_MAX_DOC_BYTES,
    DEFAULT_TEXT_FIELDS,
    DeadLetter,
    RawItem,
)
from xlidx.errors import BackendError, Interrupted, ModelError
from xlidx.indices.calibrate import AutoCalibration, IndexModel
from xlidx.indices.manage import IndexState, ensure, update_meta, version_state
from xlidx.indices.spec import IndexSpec, VectorSpec, check_model, merge_packages
from xlidx.pipeline.checkpoint import (
    Checkpoint,
    Position,
    PrefixDigest,
    Saved,
    checkpoint_key,
)
from xlidx.pipeline.detect import DEFAULT_LANGUAGES, DEFAULT_MIN_CONFIDENCE, Detector, detect_stage
from xlidx.pipeline.fingerprint import model_source, pipeline_fingerprint
from xlidx.pipeline.overlap import run_overlapped
from xlidx.pipeline.patience import Patience, StopWaiting, WaitReport
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
    retry_for: float = DEFAULT_RETRY_FOR  # seconds of an unavailable cluster to wait out
    checkpoints: Path | None = None  # where a FileSource's checkpoints live; None: none
    from_start: bool = False  # ignore a checkpoint: read the whole source again


@dataclass(frozen=True)
class FileSource:
    """A JSONL or CSV file, read with byte offsets so that ingest can checkpoint it and a
    rerun can resume (see :mod:`xlidx.pipeline.checkpoint`)."""

    path: Path
    fmt: str  # "jsonl" | "csv"

    def read(self, start: Position | None = None) -> Iterator[RawItem]:
        from xlidx.pipeline.sources import read_csv, read_jsonl

        return read_jsonl(self.path, start) if self.fmt == "jsonl" else read_csv(self.path, start)


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
    interrupted: bool = False
    resumed_after: int | None = None  # records of the source a checkpoint let this run skip
    resumed_line: int | None = None  # the source line the run resumed after
    checkpoint_note: str | None = None  # why a checkpoint was not used
    calibration: dict[str, Any] | None = None  # the calibration this run made, if any
    calibration_error: str | None = None  # why a calibration failed (the ingest went on)

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
            "interrupted": self.interrupted,
            "resumed_after": self.resumed_after,
            "resumed_line": self.resumed_line,
            "checkpoint_note": self.checkpoint_note,
            "calibration": self.calibration,
            "calibration_error": self.calibration_error,
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


class StopRequest:
    """Asks a running ingest to stop: reading ends, the batch being embedded and those already
    embedded are written, and the batches still waiting for a stage are abandoned (a rerun
    picks them up). Set it from a signal handler; ``signal_number`` says which signal asked."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_number: int = signal.SIGINT

    def set(self, signal_number: int = signal.SIGINT) -> None:
        if not self._event.is_set():
            self.signal_number = signal_number
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


Progress = Callable[[str, int], None]
RETRIED_STAGES = frozenset({"translate", "embed"})  # dead letters a rerun may cure


@dataclass
class _Run:
    items: Iterator[RawItem]
    ids: Checkpoint
    digest: PrefixDigest | None = None  # set when the source is checkpointed
    resumed: Saved | None = None
    index_created: str = ""  # the index's ``_meta.xlidx.created_at``, recorded with each save


def _open_run(
    items: Iterable[RawItem] | FileSource,
    options: IngestOptions,
    backend: Backend,
    state: IndexState,
    fingerprint: str,
    summary: IngestSummary,
    *,
    created: bool,
) -> _Run:
    """The items to read, from a checkpoint's position when it still holds (never into an
    index this run created: whatever a checkpoint says was written there is gone)."""
    if not isinstance(items, FileSource) or options.checkpoints is None:
        source = items.read() if isinstance(items, FileSource) else iter(items)
        return _Run(source, Checkpoint.temporary_file())
    key = checkpoint_key(
        source=items.path,
        fmt=items.fmt,
        cluster=backend.settings.display_urls,
        index=options.index,
        fingerprint=fingerprint,
        max_doc_bytes=options.max_doc_bytes,
    )
    ckpt = Checkpoint(options.checkpoints / f"{key}.sqlite")
    saved = ckpt.load()
    created_at = str(state.xlidx_meta.get("created_at", ""))
    digest = PrefixDigest(items.path)
    if saved is not None and not options.from_start and not created:
        if saved.index != state.index or saved.index_created != created_at:
            summary.checkpoint_note = (
                f"the checkpoint was made for another version of {options.index} "
                f"({saved.index}); read the whole input"
            )
        elif not digest.matches(saved.offset, saved.digest):
            summary.checkpoint_note = (
                f"{items.path.name} changed before line {saved.line}, where the last run "
                "stopped; read the whole input (unchanged records are skipped)"
            )
        else:
            ckpt.resume_at(saved)
            summary.resumed_after, summary.resumed_line = saved.records, saved.line
            return _Run(items.read(saved.position), ckpt, digest, saved, created_at)
    ckpt.reset()
    # a digest that failed to match has read on: start the new one from the file's beginning
    return _Run(items.read(), ckpt, PrefixDigest(items.path), index_created=created_at)


def ingest(
    items: Iterable[RawItem] | FileSource,
    *,
    backend: Backend,
    options: IngestOptions,
    embedder: EmbedderLike,
    translator: TranslatorLike | None = None,
    dead_letters: DeadLetterSink | None = None,
    progress: Progress = lambda _stage, _n: None,
    on_wait: WaitReport | None = None,
    stop: StopRequest | None = None,
) -> IngestSummary:
    """Index ``items`` into the xlidx index ``options.index`` (created when missing).

    A :class:`FileSource` with ``options.checkpoints`` set is checkpointed after every
    written batch, and a rerun resumes after the checkpoint. Transient cluster failures are
    waited out for up to ``options.retry_for`` seconds in a row (``on_wait`` hears about
    it). When ``stop`` is set, or on ``KeyboardInterrupt``, the run ends early and raises
    :class:`~xlidx.errors.Interrupted` carrying its summary (``interrupted`` set).
    """
    t0 = time.monotonic()
    stop = stop or StopRequest()
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
    patience = Patience(budget=options.retry_for, on_wait=on_wait, should_stop=stop.is_set)
    translate = Translate(translator, options.translate_to)
    writer = BulkWriter(backend, patience=patience)
    auto = AutoCalibration(backend, state, IndexModel(state, embedder=embedder), run=patience.call)
    summary = IngestSummary(index=state.index)
    fingerprint = pipeline_fingerprint(
        embedding, translate_to=options.translate_to, text_fields=options.text_fields
    )
    run = _open_run(items, options, backend, state, fingerprint, summary, created=created)
    resumed_records = run.resumed.records if run.resumed else 0
    held = False
    read_all = False  # the source was read to its end
    abandoned = 0

    def until_stopped(source: Iterator[RawItem]) -> Iterator[RawItem]:
        nonlocal read_all
        for item in source:
            if stop.is_set():
                return
            yield item
        read_all = True

    def stage(fn: Callable[[Batch], Batch]) -> Callable[[Batch], Batch]:
        def run_stage(batch: Batch) -> Batch:
            if batch.abandoned or stop.is_set():
                batch.abandoned = True  # never started: a rerun reads it again
                return batch
            return fn(batch)

        return run_stage

    def check(batch: Batch) -> Batch:
        progress("checking", 0)
        return patience.call(
            "look up documents", lambda: skip_unchanged(backend, state.index, batch)
        )

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
                until_stopped(run.items),
                text_fields=options.text_fields,
                max_doc_bytes=options.max_doc_bytes,
                batch_size=options.batch_size,
                fingerprint=fingerprint,
                ids=run.ids,
            ),
            [stage(check), stage(detect_and_translate), stage(embed)],
        ):
            if batch.abandoned:
                abandoned += 1
                continue
            if batch.prepared:
                progress("writing", 0)
                res = writer.write(
                    state.index, batch.prepared, model=embedder.name, calibration=auto.current
                )
                held = held or res.transient > 0
                summary.indexed += res.indexed
                batch.dead.extend(res.dead)
                refused = {d.id for d in res.dead}
                langs = [p.lang for p in batch.prepared if p.record.id not in refused]
                summary.languages.update(langs)
                auto.counts.update(langs)
            for letter in batch.dead:
                sink.add(letter)
            summary.read += batch.read
            summary.unchanged += batch.unchanged
            summary.dead_lettered += len(batch.dead)
            # a record that failed for a reason a rerun may cure (translation, embedding, the
            # cluster turning it away with 429/5xx) holds the checkpoint where it is, so the
            # rerun tries it again; records bad in themselves (unreadable, no text, a repeated
            # id, refused by the mapping) do not
            held = held or any(d.stage in RETRIED_STAGES for d in batch.dead)
            if run.digest is not None and batch.end is not None and not held:
                run.ids.save(
                    Saved(
                        offset=batch.end.offset,
                        line=batch.end.line,
                        records=resumed_records + summary.read,
                        digest=run.digest.advance(batch.end.offset),
                        index=state.index,
                        index_created=run.index_created,
                        updated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    )
                )
            progress("done", batch.read)
            if auto.due():  # a language has enough documents for means of its own
                progress("calibrating", 0)
                auto.calibrate()
    except (KeyboardInterrupt, StopWaiting):
        stop.set(signal.SIGINT)
        summary.interrupted = True
    except BackendError:
        if not stop.is_set():
            raise
        summary.interrupted = True  # the cluster failed while the run was stopping
    finally:
        run.ids.close()
        sink.close()
        summary.untranslated = translate.untranslated
        summary.seconds = time.monotonic() - t0
        summary.dead_letter_file = str(sink.path) if sink.path and sink.count else None
    if stop.is_set() and (abandoned or not read_all):
        summary.interrupted = True  # (a stop after the last batch changes nothing)
    # a stopped run tries the last calls once: waiting out an outage is not what was asked
    finish = Patience(budget=0) if stop.is_set() else patience
    try:
        if options.refresh and (summary.indexed or created):
            finish.call("refresh the index", lambda: backend.refresh(state.index))
        finish.call(
            "record the translation packages",
            lambda: record_translation(backend, state, translator, options.translate_to),
        )
        if not stop.is_set() and auto.due():
            progress("calibrating", 0)
            auto.calibrate()
    except (BackendError, StopWaiting):
        # every batch is written; a refresh happens by itself within a second anyway
        if not stop.is_set():
            raise
    if auto.made:
        summary.calibration = auto.made[-1].to_json()
    summary.calibration_error = auto.error
    if summary.interrupted:
        name = signal.Signals(stop.signal_number).name
        raise Interrupted(
            f"interrupted by {name} after {summary.read} record(s)",
            signal_number=stop.signal_number,
            summary=summary,
        )
    return summary


def record_translation(
    backend: Backend,
    state: IndexState,
    translator: TranslatorLike | None,
    translate_to: Sequence[str],
) -> None:
    """Keep ``_meta`` true to what produced the index's translations."""
    state = version_state(backend, state.index)  # fresh: a calibration may have moved it
    x = dict(state.xlidx_meta)
    used = translator.describe() if translator is not None else []
    packages = merge_packages(x.get("translation_packages", []), used)
    targets = sorted(set(x.get("translate_to", [])) | set(translate_to))
    if packages != x.get("translation_packages", []) or targets != x.get("translate_to", []):
        x["translation_packages"] = packages
        x["translate_to"] = targets
        update_meta(backend, state, x)
