"""In-process ingest: read → validate → skip unchanged → detect → translate → embed → write.

:func:`ingest_into` is the workflow behind :meth:`xlidx.Index.ingest` (and ``xlidx ingest``):
it opens the source, settles the options against the index, loads what is not given and
calls :func:`ingest`, which runs the stages of one :class:`~xlidx.workflows.pipeline.Pipeline`
overlapped in threads (see :mod:`xlidx.pipeline.overlap`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

from xlidx.backends.base import Backend
from xlidx.documents import DeadLetter, RawItem
from xlidx.errors import BackendError, Interrupted, ModelError
from xlidx.indices.calibrate import AutoCalibration, IndexModel
from xlidx.indices.manage import ensure, resolve
from xlidx.indices.writer import BulkWriter
from xlidx.pipeline.checkpoint import Saved
from xlidx.pipeline.detect import Detector
from xlidx.pipeline.fingerprint import model_source, pipeline_fingerprint
from xlidx.pipeline.options import IngestOptions
from xlidx.pipeline.overlap import run_overlapped
from xlidx.pipeline.patience import Patience, StopWaiting, WaitReport
from xlidx.pipeline.stages import Batch, EmbedderLike, TranslatorLike, batches
from xlidx.pipeline.summary import IngestSummary
from xlidx.spec import check_model
from xlidx.workflows.inputs import FileSource, FromIndex, Source, open_ingest, open_run, settled
from xlidx.workflows.pipeline import (
    Pipeline,
    Progress,
    index_spec,
    quiet,
    record_translation,
)

if TYPE_CHECKING:
    from xlidx.workflows.index import Index

__all__ = [
    "DeadLetterSink",
    "FileSource",
    "FromIndex",
    "IngestOptions",
    "IngestSummary",
    "StopRequest",
    "ingest",
    "ingest_into",
    "record_translation",
]

RETRIED_STAGES = frozenset({"translate", "embed"})  # dead letters a rerun may cure


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


def default_dead_letters(index: str) -> Path:
    """Where an ingest into ``index`` writes its dead letters unless told: the working
    directory's ``xlidx-deadletters-INDEX.jsonl`` (created on the first one)."""
    return Path(f"xlidx-deadletters-{index}.jsonl")


def ingest_into(
    index: Index,
    source: Source,
    options: IngestOptions | None = None,
    *,
    fmt: str | None = None,
    model: str | None = None,
    device: str = "auto",
    embedder: EmbedderLike | None = None,
    translator: TranslatorLike | None = None,
    dead_letters: DeadLetterSink | Path | None = None,
    progress: Progress | None = None,
    on_wait: WaitReport | None = None,
    stop: StopRequest | None = None,
) -> IngestSummary:
    """The workflow of :meth:`xlidx.Index.ingest` (see there)."""
    start = open_ingest(index, source, options, fmt=fmt, queued=False)
    existing = start.existing
    if embedder is None:
        from xlidx.pipeline.embed import load_embedder
        from xlidx.workflows.models import resolve_model

        recorded = dict(existing.xlidx_meta.get("embedding", {})) if existing else None
        embedder = load_embedder(resolve_model(model, recorded), device=device)
    if translator is None and start.options.translate_to:
        from xlidx.pipeline.translate import Translator
        from xlidx.pipeline.translation_cache import TranslationCache

        translator = Translator(device=device, cache=TranslationCache())
    if not isinstance(dead_letters, DeadLetterSink):
        dead_letters = DeadLetterSink(dead_letters or default_dead_letters(index.name))
    return ingest(
        start.input.items,
        backend=index.backend,
        options=start.options,
        embedder=embedder,
        translator=translator,
        dead_letters=dead_letters,
        progress=progress or quiet,
        on_wait=on_wait,
        stop=stop,
    )


def ingest(
    items: Iterable[RawItem] | FileSource,
    *,
    backend: Backend,
    options: IngestOptions,
    embedder: EmbedderLike,
    translator: TranslatorLike | None = None,
    dead_letters: DeadLetterSink | None = None,
    progress: Progress = quiet,
    on_wait: WaitReport | None = None,
    stop: StopRequest | None = None,
) -> IngestSummary:
    """Index ``items`` into the xlidx index ``options.index`` (created when missing), with
    the models given (:meth:`xlidx.Index.ingest` loads them for you).

    A :class:`FileSource` with ``options.checkpoints`` set is checkpointed after every
    written batch, and a rerun resumes after the checkpoint. Transient cluster failures are
    waited out for up to ``options.retry_for`` seconds in a row (``on_wait`` hears about
    it). When ``stop`` is set, or on ``KeyboardInterrupt``, the run ends early and raises
    :class:`~xlidx.errors.Interrupted` carrying its summary (``interrupted`` set).
    """
    existing = (
        resolve(backend, options.index) if options.index and options.languages is None else None
    )
    options = settled(backend, options, existing)
    run = _InProcess(
        items,
        backend=backend,
        options=options,
        embedder=embedder,
        translator=translator,
        sink=dead_letters or DeadLetterSink(None),
        progress=progress,
        on_wait=on_wait,
        stop=stop or StopRequest(),
    )
    return run.run()


class _InProcess:
    """One in-process ingest: the pipeline's stages overlapped, the writes accounted for."""

    def __init__(
        self,
        items: Iterable[RawItem] | FileSource,
        *,
        backend: Backend,
        options: IngestOptions,
        embedder: EmbedderLike,
        translator: TranslatorLike | None,
        sink: DeadLetterSink,
        progress: Progress,
        on_wait: WaitReport | None,
        stop: StopRequest,
    ) -> None:
        self.t0 = time.monotonic()
        self.backend, self.options, self.sink = backend, options, sink
        self.progress, self.stop = progress, stop
        embedding = embedder.describe()
        if options.translate_to and translator is None:
            raise ModelError("--translate-to needs a translator, but none was given")
        self.state, self.created = ensure(
            backend, index_spec(options, {**embedding, "source": model_source(embedder)})
        )
        if not self.created:
            check_model(self.state.meta, embedding, options.index)
        self.patience = Patience(
            budget=options.retry_for or 0.0, on_wait=on_wait, should_stop=stop.is_set
        )
        self.auto = AutoCalibration(
            backend, self.state, IndexModel(self.state, embedder=embedder), run=self.patience.call
        )
        self.pipeline = Pipeline(
            backend,
            self.state.index,
            options=options,
            detector=Detector(options.detect_among, min_confidence=options.min_confidence),
            translator=translator,
            embedder=embedder,
            embedding=embedding,
            writer=BulkWriter(backend, patience=self.patience),
            calibration=lambda: self.auto.current,
            patience=self.patience,
            progress=progress,
        )
        self.summary = IngestSummary(index=self.state.index)
        self.fingerprint = pipeline_fingerprint(
            embedding, translate_to=options.translate_to, text_fields=options.text_fields
        )
        self.source = open_run(
            items, options, backend, self.state, self.fingerprint, self.summary,
            created=self.created,
        )  # fmt: skip
        self.held = False  # a record a rerun may cure failed: the checkpoint stays put
        self.read_all = False  # the source was read to its end
        self.abandoned = 0

    def run(self) -> IngestSummary:
        try:
            self._loop()
        except (KeyboardInterrupt, StopWaiting):
            self.stop.set(signal.SIGINT)
            self.summary.interrupted = True
        except BackendError:
            if not self.stop.is_set():
                raise
            self.summary.interrupted = True  # the cluster failed while the run was stopping
        finally:
            self.source.ids.close()
            self.sink.close()
            self.summary.untranslated = self.pipeline.untranslated
            self.summary.seconds = time.monotonic() - self.t0
            path = self.sink.path
            self.summary.dead_letter_file = str(path) if path and self.sink.count else None
        if self.stop.is_set() and (self.abandoned or not self.read_all):
            self.summary.interrupted = True  # (a stop after the last batch changes nothing)
        self._finish()
        return self._result()

    def _until_stopped(self, source: Iterator[RawItem]) -> Iterator[RawItem]:
        for item in source:
            if self.stop.is_set():
                return
            yield item
        self.read_all = True

    def _stage(self, fn: Callable[[Batch], Batch]) -> Callable[[Batch], Batch]:
        def run_stage(batch: Batch) -> Batch:
            if batch.abandoned or self.stop.is_set():
                batch.abandoned = True  # never started: a rerun reads it again
                return batch
            return fn(batch)

        return run_stage

    def _loop(self) -> None:
        pipe = self.pipeline
        read = batches(
            self._until_stopped(self.source.items),
            text_fields=self.options.text_fields,
            max_doc_bytes=self.options.max_doc_bytes,
            batch_size=self.options.batch_size,
            fingerprint=self.fingerprint,
            ids=self.source.ids,
        )
        stages = [self._stage(pipe.check), self._stage(pipe.prepare), self._stage(pipe.embed)]
        for batch in run_overlapped(read, stages):
            if batch.abandoned:
                self.abandoned += 1
                continue
            self._account(batch)
            self.progress("done", batch.read)
            if self.auto.due():  # a language has enough documents for means of its own
                self.progress("calibrating", 0)
                self.auto.calibrate()

    def _account(self, batch: Batch) -> None:
        """Write the batch, count it, dead-letter what failed, move the checkpoint on."""
        written = self.pipeline.write(batch)
        self.held = self.held or written.transient > 0
        self.summary.indexed += written.indexed
        self.summary.languages.update(written.languages)
        self.auto.counts.update(written.languages)
        for letter in batch.dead:
            self.sink.add(letter)
        self.summary.read += batch.read
        self.summary.unchanged += batch.unchanged
        self.summary.dead_lettered += len(batch.dead)
        # a record that failed for a reason a rerun may cure (translation, embedding, the
        # cluster turning it away with 429/502/503/504) holds the checkpoint where it is, so the
        # rerun tries it again; records bad in themselves (unreadable, no text, a repeated
        # id, refused by the mapping) do not
        self.held = self.held or any(d.stage in RETRIED_STAGES for d in batch.dead)
        if self.source.digest is not None and batch.end is not None and not self.held:
            resumed = self.source.resumed.records if self.source.resumed else 0
            self.source.ids.save(
                Saved(
                    offset=batch.end.offset,
                    line=batch.end.line,
                    records=resumed + self.summary.read,
                    digest=self.source.digest.advance(batch.end.offset),
                    index=self.state.index,
                    index_created=self.source.index_created,
                    updated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                )
            )

    def _finish(self) -> None:
        """Refresh, record the translation packages, calibrate what became due. A stopped
        run tries these once: waiting out an outage is not what was asked."""
        stopped = self.stop.is_set()
        finish = Patience(budget=0) if stopped else self.patience
        try:
            if self.options.refresh and (self.summary.indexed or self.created):
                finish.call("refresh the index", lambda: self.backend.refresh(self.state.index))
            finish.call(
                "record the translation packages",
                lambda: self.pipeline.record_translation(self.state),
            )
            if not stopped and self.auto.due():
                self.progress("calibrating", 0)
                self.auto.calibrate()
        except (BackendError, StopWaiting):
            # every batch is written; a refresh happens by itself within a second anyway
            if not stopped:
                raise

    def _result(self) -> IngestSummary:
        summary = self.summary
        if self.auto.made:
            summary.calibration = self.auto.made[-1].to_json()
        summary.calibration_error = self.auto.error
        if summary.interrupted:
            name = signal.Signals(self.stop.signal_number).name
            raise Interrupted(
                f"interrupted by {name} after {summary.read} record(s)",
                signal_number=self.stop.signal_number,
                summary=summary,
            )
        return summary
