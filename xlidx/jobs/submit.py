"""The client side of queued ingest: enqueue batches as chains, follow a job, describe a model.

Records are validated here (bad ones become dead letters of the job at once), cut into
batches and sent as ``translate → embed → write`` chains. Progress lives in the job store,
so ``--wait`` and ``xlidx queue status`` can follow a job from any machine. Jobs are
:class:`~xlidx.pipeline.summary.QueuedSummary` objects, sent and followed alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from celery import Celery, chain

from xlidx.documents import RawItem
from xlidx.errors import ModelError, QueueError, XlidxError
from xlidx.jobs.options import JobOptions
from xlidx.jobs.store import JobStore, new_job_id
from xlidx.pipeline.stages import batches
from xlidx.pipeline.summary import QueuedSummary
from xlidx.pipeline.wire import encode_prepared


def _publish_error(app: Celery, exc: Exception) -> QueueError:
    from xlidx.config import redact_url

    return QueueError(
        f"cannot send tasks to the broker at {redact_url(str(app.conf.broker_url))}: {exc}"
    )


def enqueue(
    items: Iterable[RawItem],
    *,
    app: Celery,
    store: JobStore,
    options: JobOptions,
    source: str,
    on_batch: Callable[[QueuedSummary], None] = lambda _s: None,
) -> QueuedSummary:
    """Validate ``items`` and send them in batches; returns what was sent under which job
    (a receipt: ``to_json()`` gives job, batches, docs, read and invalid)."""
    job = new_job_id()
    opts = options.to_dict()
    store.create_job(job, index=options.index, source=source, options=opts)
    sent = QueuedSummary(job=job, index=options.index, source=source, receipt=True)
    for batch in batches(
        items,
        text_fields=options.options.text_fields,
        max_doc_bytes=options.options.max_doc_bytes,
        batch_size=options.options.batch_size,
        fingerprint=options.fingerprint,
    ):
        sent.read += batch.read
        if batch.dead:
            n = store.add_dead_letters(job, batch.dead, index=options.index)
            sent.invalid += n
            sent.dead_lettered += n
        if not batch.prepared:
            continue
        payload: dict[str, Any] = {
            "job": job,
            "batch": sent.batches,
            "options": opts,
            "prepared": [encode_prepared(p) for p in batch.prepared],
            "dead": [],
            "unchanged": 0,
            "untranslated": {},
        }
        store.save_pending(job, sent.batches, payload)
        send_batch(app, payload)
        sent.batches += 1
        sent.docs += len(batch.prepared)
        on_batch(sent)
    store.mark_enqueued(
        job, batches=sent.batches, docs=sent.docs, read=sent.read, invalid=sent.invalid
    )
    sent.enqueued = True
    return sent


def send_batch(app: Celery, payload: dict[str, Any]) -> None:
    """Send one batch as a ``translate → embed → write`` chain."""
    from kombu.exceptions import OperationalError

    flow = chain(
        app.signature("xlidx.translate", args=(payload,)),
        app.signature("xlidx.embed"),
        app.signature("xlidx.write"),
    )
    try:
        flow.apply_async(retry=True)
    except OperationalError as exc:
        raise _publish_error(app, exc) from exc


def resend(app: Celery, store: JobStore, job: str) -> int:
    """Send every batch of ``job`` that is not done yet again; returns how many.

    Safe at any time: a batch done twice counts once and writes the same documents. Needed
    when a message was lost: the Redis transport pops a message before it records it as
    unacknowledged, so a worker killed in between loses it.
    """
    pending = store.pending(job)
    for payload in pending.values():
        send_batch(app, payload)
    return len(pending)


def follow(
    store: JobStore,
    job: str,
    *,
    on_progress: Callable[[QueuedSummary], None] = lambda _p: None,
    on_stall: Callable[[float], None] = lambda _s: None,
    recover: Callable[[], int] | None = None,
    recover_after: float = 3720.0,
    poll: float = 0.5,
    stall_after: float = 60.0,
    store_outage: float = 120.0,
    timeout: float | None = None,
) -> QueuedSummary:
    """Poll the store until ``job`` has every batch done; survives a Redis restart of up to
    ``store_outage`` seconds. When nothing finished for ``recover_after`` seconds (longer than
    a lost worker's messages take to come back), ``recover()`` sends the unfinished batches
    again. Raises :class:`QueueError` when the job's record disappears (a Redis without
    persistence was restarted) or on ``timeout``."""
    t0 = last_change = last_recover = time.monotonic()
    last_done = -1
    down_since: float | None = None
    warned = False
    while True:
        try:
            progress = store.progress(job)
            down_since = None
        except QueueError:
            now = time.monotonic()
            down_since = down_since or now
            if now - down_since > store_outage:
                raise
            time.sleep(1.0)
            continue
        if progress is None:
            raise QueueError(
                f"job {job} is gone from the job store (was Redis restarted without "
                "persistence?); its queued batches may be lost: run the same `xlidx ingest` "
                "again, documents already indexed are skipped as unchanged"
            )
        on_progress(progress)
        if progress.finished:
            return progress
        now = time.monotonic()
        if progress.docs_done != last_done:
            last_done, last_change, warned = progress.docs_done, now, False
        else:
            if not warned and now - last_change > stall_after:
                on_stall(now - last_change)
                warned = True
            idle = now - max(last_change, last_recover)
            if recover is not None and idle > recover_after:
                with contextlib.suppress(QueueError):  # Redis away: try on the next round
                    recover()
                    last_recover = now
        if timeout is not None and now - t0 > timeout:
            raise QueueError(
                f"job {job} did not finish within {timeout:g}s "
                f"({progress.batches_done}/{progress.batches} batches done)"
            )
        time.sleep(poll)


def describe_model(app: Celery, spec: str | None, *, timeout: float = 120.0) -> dict[str, Any]:
    """Ask a worker on the ``embed`` queue what model ``spec`` is (dimension, prompts, …);
    ``None`` asks for the worker's own model."""
    from celery.exceptions import TimeoutError as CeleryTimeout
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    try:
        result = app.send_task("xlidx.describe_model", args=(spec,), queue="embed")
    except OperationalError as exc:
        raise _publish_error(app, exc) from exc
    try:
        answer = result.get(timeout=timeout, propagate=True)
    except CeleryTimeout:
        result.forget()
        named = repr(spec) if spec else "(the workers' default)"
        raise QueueError(
            f"no worker on the embed queue described model {named} within {timeout:g}s: "
            "start one with `xlidx worker --queues embed`, or create the index first with "
            "an in-process `xlidx ingest`"
        ) from None
    except XlidxError:
        raise
    except (OperationalError, OSError, RedisError) as exc:  # the result backend is away
        raise _publish_error(app, exc) from exc
    except Exception as exc:  # the worker's exception, rebuilt from JSON
        raise ModelError(f"the embed worker cannot load model {spec!r}: {exc}") from None
    if not isinstance(answer, dict) or "dimension" not in answer:
        raise ModelError(f"the embed worker described model {spec!r} as {answer!r}")
    return answer
