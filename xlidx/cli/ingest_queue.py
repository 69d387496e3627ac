"""``xlidx ingest --queue [--wait]``: renders :meth:`xlidx.Index.enqueue` (the workflow is
:mod:`xlidx.workflows.enqueue`): progress bars while sending and following, then the job."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from xlidx.cli._state import err, out

if TYPE_CHECKING:
    from xlidx.pipeline.options import IngestOptions
    from xlidx.pipeline.summary import QueuedSummary
    from xlidx.workflows import Index
    from xlidx.workflows.inputs import Source

EXIT_DEAD_LETTERS = 2


def run_queued(
    target: Index,
    source: Source,
    options: IngestOptions,
    *,
    fmt: str | None,
    model: str | None,
    wait: bool,
    as_json: bool,
    show_progress: bool,
) -> None:
    bars = _Bars(show_progress)
    try:
        job = target.enqueue(
            source, options, fmt=fmt, model=model, wait=wait, on_sent=bars.sent,
            on_progress=bars.progress, on_stall=bars.stalled, on_recover=bars.recovered,
        )  # fmt: skip
    finally:
        bars.close()
    if as_json:
        out.print_json(json.dumps(job.to_json()))
    elif not wait:
        out.print(
            f"queued {job.docs} document(s) in {job.batches} batch(es) as job {job.job} "
            f"for {target.name}; follow it with `xlidx queue status`"
        )
    else:
        out.print(
            f"job {job.job}: read {job.read}, indexed {job.indexed}, unchanged "
            f"{job.unchanged}, dead-lettered {job.dead_lettered} into {target.name}"
        )
        if job.languages:
            langs = sorted(job.languages.items(), key=lambda kv: -kv[1])
            out.print("languages: " + ", ".join(f"{k} {v}" for k, v in langs))
    if wait:
        for pair, n in sorted(job.untranslated.items()):
            err.print(
                f"warning: no translation package for {pair}; {n} document(s) indexed without it"
            )
    dead = job.dead_lettered if wait else job.invalid
    if dead:
        err.print(f"{dead} record(s) dead-lettered; see `xlidx deadletters list --job {job.job}`")
        raise typer.Exit(EXIT_DEAD_LETTERS)


class _Bars:
    """A bar while batches are sent, then one while the job is followed."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.job = ""
        self.phase = ""
        self.bar: Progress | None = None
        self.task = TaskID(0)

    def _open(self, phase: str, stage: str, total: int | None) -> Progress:
        if self.phase != phase or self.bar is None:
            self.close()
            self.phase = phase
            self.bar = Progress(
                TextColumn("[bold]{task.fields[stage]:<9}"),
                BarColumn(),
                TextColumn("{task.fields[done]:>8,} docs"),
                TimeElapsedColumn(),
                console=err,
                disable=not self.show,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(phase, total=total, stage=stage, done=0)
        return self.bar

    def sent(self, job: QueuedSummary) -> None:
        self.job = job.job
        self._open("enqueue", "queueing", None).update(self.task, completed=job.docs, done=job.docs)

    def progress(self, job: QueuedSummary) -> None:
        self.job = job.job
        bar = self._open("wait", "indexing", job.docs or None)
        bar.update(self.task, completed=job.docs_done, done=job.docs_done)

    def stalled(self, seconds: float) -> None:
        err.print(
            f"no batch of job {self.job} finished in {seconds:.0f}s; are workers running? "
            "(`xlidx queue status` lists them)"
        )

    def recovered(self, n: int) -> None:
        err.print(
            f"sent {n} unfinished batch(es) of job {self.job} again (their messages were lost)"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
