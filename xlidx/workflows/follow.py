"""Following an index: keep DST, an xlidx index, in step with SRC, a plain index anyone writes.

The workflow behind :meth:`xlidx.Index.follow` (and ``xlidx ingest --from-index SRC --index
DST --follow``). Each poll reads what changed in SRC since the checkpoint
(:mod:`~xlidx.workflows.follow_reads`: by ``_seq_no`` per shard, or by ``--since-field``), at
most ``max_docs_per_poll`` documents, and hands them to in-process ingest
(:func:`~xlidx.workflows.ingest.ingest`: the same pipeline, content-hash skip, bulk writer,
dead letters, translation cache and calibration), then saves the checkpoint in the cluster
(:mod:`~xlidx.indices.follow_store`). Deletions are found by comparing ids
(:mod:`~xlidx.indices.reconcile`) at most every ``reconcile_every`` seconds, and only when a
poll passed over an operation that left no document. A lock in the cluster, renewed by a
thread, keeps a second follower of the same pair out.

A poll that finds nothing costs one request (SRC's shard positions; with ``--since-field``
one count and one positions request). The run ends when ``stop`` is set (or on
``KeyboardInterrupt``): the chunk in flight is written (its checkpoint is kept only when all of
it was), the lock is released, and :class:`~xlidx.errors.Interrupted` carries the summary; a
library caller may also stop after ``FollowOptions.polls`` polls.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from xlidx.documents import RawItem
from xlidx.errors import BackendError, ConfigError, Interrupted, XlidxError
from xlidx.indices.follow_store import FollowStore, Held
from xlidx.indices.reconcile import Reconciled, reconcile
from xlidx.pipeline.follow_state import FollowCheckpoint, LagClock, LockLost, lease_seconds
from xlidx.pipeline.patience import Patience, StopWaiting, WaitReport
from xlidx.pipeline.summary import IngestSummary
from xlidx.workflows.follow_reads import Reader, open_reader, source_heads
from xlidx.workflows.follow_types import FollowOptions, FollowSummary, PollReport
from xlidx.workflows.ingest import DeadLetterSink, StopRequest, default_dead_letters, ingest
from xlidx.workflows.pipeline import Progress, quiet

if TYPE_CHECKING:
    from xlidx.indices.manage import IndexState
    from xlidx.pipeline.options import IngestOptions
    from xlidx.pipeline.stages import EmbedderLike, TranslatorLike
    from xlidx.workflows.index import Index

__all__ = ["FollowOptions", "FollowSummary", "PollReport", "follow_into"]


OnPoll = Callable[[PollReport], None]


class _Stopped(Exception):
    """A chunk's ingest was interrupted (its counts are in the summary already)."""


def follow_into(
    index: Index,
    source: str,
    options: IngestOptions | None = None,
    follow: FollowOptions | None = None,
    *,
    model: str | None = None,
    device: str = "auto",
    embedder: EmbedderLike | None = None,
    translator: TranslatorLike | None = None,
    dead_letters: DeadLetterSink | Path | None = None,
    progress: Progress | None = None,
    on_poll: OnPoll | None = None,
    on_wait: WaitReport | None = None,
    stop: StopRequest | None = None,
) -> FollowSummary:
    """The workflow of :meth:`xlidx.Index.follow` (see there)."""
    follower = _Follower(index, source, options, follow or FollowOptions(), stop or StopRequest())
    follower.on_poll = on_poll or (lambda _r: None)
    follower.progress = progress or quiet
    follower.on_wait = on_wait
    return follower.run(model=model, device=device, embedder=embedder, translator=translator,
                        dead_letters=dead_letters)  # fmt: skip


class _Heartbeat(threading.Thread):
    """Renews the lock every third of its lease; remembers a lock taken over."""

    def __init__(self, store: FollowStore, held: Held, lease: float) -> None:
        super().__init__(name="xlidx-follow-lock", daemon=True)
        self.store, self.held, self.lease = store, held, lease
        self.lost: LockLost | None = None
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.lease / 3):
            try:
                self.held = self.store.renew(self.held, self.lease)
            except LockLost as exc:
                self.lost = exc
                return
            except BackendError:
                continue  # the cluster is away: the next beat tries again

    def finish(self) -> Held:
        self._done.set()
        self.join()
        return self.held


class _Follower:
    def __init__(
        self,
        index: Index,
        source: str,
        options: IngestOptions | None,
        follow: FollowOptions,
        stop: StopRequest,
    ) -> None:
        from xlidx.pipeline.options import IngestOptions

        self.index, self.source, self.follow, self.stop = index, source, follow, stop
        self.backend = index.backend
        self.options = replace(options or IngestOptions(), index=index.name)
        self.on_poll: OnPoll = lambda _r: None
        self.progress: Progress = quiet
        self.on_wait: WaitReport | None = None
        self.lag = LagClock()
        self.summary = FollowSummary(
            source=source, index=index.name, since_field=follow.since_field,
            mode="field" if follow.since_field else "seq_no",
        )  # fmt: skip
        self.maybe_deleted = True  # SRC may have lost documents while no follower ran
        self.last_reconcile: float | None = None

    # -- the run -------------------------------------------------------------------------------
    def run(
        self,
        *,
        model: str | None,
        device: str,
        embedder: EmbedderLike | None,
        translator: TranslatorLike | None,
        dead_letters: DeadLetterSink | Path | None,
    ) -> FollowSummary:
        from xlidx.indices.manage import resolve
        from xlidx.workflows.inputs import settled

        t0 = time.monotonic()
        backend, name = self.backend, self.index.name
        source_heads(backend, self.source)  # a one-line error when SRC is missing
        if self.source == name:
            raise ConfigError(f"--from-index and --index name the same index ({name})")
        self.reader: Reader = open_reader(
            backend, self.source, self.follow.since_field, self.lag,
            page_size=self.follow.page_size,
        )  # fmt: skip
        existing = resolve(backend, name)
        self.options = settled(backend, self.options, existing)
        self.patience = Patience(
            budget=self.options.retry_for or 0.0, on_wait=self.on_wait,
            should_stop=self.stop.is_set,
        )  # fmt: skip
        self.store = FollowStore(backend, self.source, name, index=self.follow.state_index)
        self.store.ensure()
        lease = self.follow.lease or lease_seconds(self.follow.interval)
        self.beat = _Heartbeat(self.store, self.store.acquire(self.store.new_lease(lease)), lease)
        self.beat.start()
        self.sink = dead_letters if isinstance(dead_letters, DeadLetterSink) else (
            DeadLetterSink(dead_letters or default_dead_letters(name))
        )  # fmt: skip
        try:
            self._prepare(existing, model, device, embedder, translator)
            self._loop()
        except (KeyboardInterrupt, StopWaiting, _Stopped):
            self.stop.set(self.stop.signal_number if self.stop.is_set() else signal.SIGINT)
        except BackendError:
            if not self.stop.is_set():
                raise  # (the cluster failed while the run was stopping: a stop all the same)
        finally:
            self._release()
            self.summary.seconds = time.monotonic() - t0
            path = self.sink.path
            self.summary.dead_letter_file = str(path) if path and self.sink.count else None
        if self.stop.is_set():
            self.summary.interrupted = True
            sig = signal.Signals(self.stop.signal_number).name
            raise Interrupted(
                f"interrupted by {sig} after {self.summary.polls} poll(s)",
                signal_number=self.stop.signal_number,
                summary=self.summary,
            )
        return self.summary

    def _release(self) -> None:
        held = self.beat.finish()
        with contextlib.suppress(XlidxError):  # the cluster is away: the lock expires by itself
            self.store.release(held)

    def _prepare(
        self,
        existing: IndexState | None,
        model: str | None,
        device: str,
        embedder: EmbedderLike | None,
        translator: TranslatorLike | None,
    ) -> None:
        """Load the models, create DST or check its model, find where to resume."""
        from xlidx.indices.manage import ensure
        from xlidx.pipeline.fingerprint import model_source
        from xlidx.spec import check_model
        from xlidx.workflows.pipeline import index_spec

        if embedder is None:
            from xlidx.pipeline.embed import load_embedder
            from xlidx.workflows.models import resolve_model

            recorded = dict(existing.xlidx_meta.get("embedding", {})) if existing else None
            embedder = load_embedder(resolve_model(model, recorded), device=device)
        if translator is None and self.options.translate_to:
            from xlidx.pipeline.translate import Translator
            from xlidx.pipeline.translation_cache import TranslationCache

            translator = Translator(device=device, cache=TranslationCache())
        self.embedder, self.translator = embedder, translator
        embedding = embedder.describe()
        spec = index_spec(self.options, {**embedding, "source": model_source(embedder)})
        state, created = ensure(self.backend, spec)
        if not created:
            check_model(state.meta, embedding, self.index.name)
        self.checkpoint = self._resume_point(state)

    def _resume_point(self, state: IndexState) -> FollowCheckpoint:
        created_at = str(state.xlidx_meta.get("created_at", ""))
        fresh = FollowCheckpoint(
            source=self.source, target=self.index.name, mode=self.summary.mode,
            since_field=self.follow.since_field, target_index=state.index,
            target_created=created_at,
        )  # fmt: skip
        saved = None if self.follow.from_start else self.store.load()
        if saved is None:
            return fresh
        why = saved.unfit_for(self.summary.mode, self.follow.since_field, state.index, created_at)
        if why is not None:
            self.summary.note(f"{why}: read {self.source} whole again (unchanged documents are "
                              "skipped)")  # fmt: skip
            return fresh
        self.summary.resumed, self.summary.read_before = True, saved.read
        return saved

    # -- polls ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stop.is_set():
            if self.beat.lost is not None:
                raise self.beat.lost
            report = self.patience.call(f"follow {self.source}", self._poll)
            self.on_poll(report)
            if self.follow.polls is not None and self.summary.polls >= self.follow.polls:
                return
            if report.caught_up:
                self._pause(self.follow.interval)

    def _pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stop.is_set() and self.beat.lost is None:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.2, left))

    def _poll(self) -> PollReport:
        t0 = time.monotonic()
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.progress("polling", 0)
        chunk = self.reader.read(self.checkpoint, self.follow.max_docs_per_poll)
        for text in chunk.notes:
            self.summary.note(text)
        done = self._ingest(chunk.items) if chunk.items else IngestSummary()
        if chunk.checkpoint != self.checkpoint:
            stamped = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.store.save(replace(chunk.checkpoint, updated=stamped))
        self.checkpoint = chunk.checkpoint
        carried_since = self.reader.settled(self.checkpoint)
        carried = time.monotonic() - carried_since if carried_since is not None else 0.0
        self.maybe_deleted = self.maybe_deleted or chunk.maybe_deleted
        reconciled = self._reconcile() if chunk.caught_up and self._reconcile_due() else None
        s = self.summary
        s.polls += 1
        # behind by what still waits, or by what this poll carried (its age when it reached
        # DST: at most one interval more than the truth)
        s.lag_seconds = max(self.lag.lag(time.monotonic()), carried)
        s.waiting = chunk.waiting
        return PollReport(
            poll=s.polls, at=at, read=len(chunk.items), indexed=done.indexed,
            unchanged=done.unchanged, dead_lettered=done.dead_lettered,
            deleted=reconciled.deleted if reconciled else 0, lag_seconds=s.lag_seconds,
            waiting=s.waiting, caught_up=chunk.caught_up, seconds=time.monotonic() - t0,
            reconciled=reconciled, total_read=s.read,
        )  # fmt: skip

    def _ingest(self, items: list[RawItem]) -> IngestSummary:
        try:
            done = ingest(
                items, backend=self.backend, options=self.options, embedder=self.embedder,
                translator=self.translator, dead_letters=self.sink, progress=self.progress,
                on_wait=self.on_wait, stop=self.stop,
            )  # fmt: skip
        except Interrupted as exc:
            if isinstance(exc.summary, IngestSummary):
                self.summary.add(exc.summary)
            raise _Stopped from None
        self.summary.add(done)
        return done

    def _reconcile_due(self) -> bool:
        if not self.maybe_deleted:
            return False
        last = self.last_reconcile
        return last is None or time.monotonic() - last >= self.follow.reconcile_every

    def _reconcile(self) -> Reconciled:
        self.progress("reconciling", 0)
        done = reconcile(self.backend, self.source, self.index.name)
        self.last_reconcile, self.maybe_deleted = time.monotonic(), False
        self.summary.deleted += done.deleted
        self.summary.reconciliations += 1
        return done
