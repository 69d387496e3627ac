"""``xlidx queue status`` and ``xlidx deadletters list | retry | purge``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from xlidx.cli._state import err, out
from xlidx.errors import ConfigError

if TYPE_CHECKING:
    from xlidx.jobs.store import JobStore

app = typer.Typer(help="The background indexing queues.", no_args_is_help=True)
deadletters_app = typer.Typer(
    help="Records that queued jobs could not index: list, retry or purge them.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IndexOpt = Annotated[
    str | None, typer.Option("--index", help="Only this index's.", show_default=False)
]
JobOpt = Annotated[str | None, typer.Option("--job", help="Only this job's.", show_default=False)]
StageOpt = Annotated[
    str | None,
    typer.Option(
        "--stage",
        help="Only this stage's: read, validate, detect, translate, embed or write.",
        show_default=False,
    ),
]


def _store() -> JobStore:
    from xlidx.jobs.app import get_settings
    from xlidx.jobs.store import JobStore

    return JobStore(get_settings().state_url)


@app.command("status")
def status(
    as_json: JsonOpt = False,
    jobs: Annotated[int, typer.Option("--jobs", min=0, help="Recent jobs to show.")] = 5,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for workers to answer.", min=0.1)
    ] = 1.0,
) -> None:
    """Queue depths, messages in flight, live workers, recent jobs and dead letters."""
    from xlidx.jobs.app import get_app, get_settings
    from xlidx.jobs.queues import IN_FLIGHT_UNKNOWN
    from xlidx.jobs.queues import status as queue_status

    report = queue_status(get_app(), get_settings(), _store(), jobs=jobs, timeout=timeout)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    table = Table("queue", "waiting", box=None)
    for q, n in report.waiting.items():
        table.add_row(q, str(n))
    out.print(table)
    if report.in_flight is None:
        out.print(f"in flight: {IN_FLIGHT_UNKNOWN}")
    else:
        out.print(f"in flight: {report.in_flight} (taken by workers)")
    if report.workers:
        for name, qs in report.workers.items():
            out.print(f"worker {name}: {','.join(qs)}")
    else:
        out.print("workers: none answered (start one with `xlidx worker`)")
    if report.jobs:
        jt = Table(
            "job", "index", "state", "batches", "docs", "indexed", "unchanged", "dead", box=None
        )
        for j in report.jobs:
            jt.add_row(
                j.job,
                j.index,
                j.state,
                f"{j.batches_done}/{j.batches}",
                str(j.docs),
                str(j.indexed),
                str(j.unchanged),
                str(j.dead_lettered),
            )
        out.print(jt)
    out.print(f"dead letters: {report.dead_letters}")


@app.command("recover")
def recover(
    job: Annotated[
        str | None,
        typer.Option("--job", help="Only this job (default: every unfinished recent job)."),
    ] = None,
) -> None:
    """Send the unfinished batches of a job again (after workers were lost).

    Harmless when the batches were only slow: a batch done twice counts once and writes the
    same documents. `ingest --queue --wait` does this by itself after XLIDX_RECOVER_AFTER.
    """
    from xlidx.jobs.app import get_app
    from xlidx.jobs.queues import recover as recover_jobs

    sent = recover_jobs(get_app(), _store(), job)
    for j, n in sent.items():
        if n:
            out.print(f"job {j}: sent {n} unfinished batch(es) again")
    if not sum(sent.values()):
        out.print("nothing to recover")


@deadletters_app.command("list")
def list_letters(
    index: IndexOpt = None,
    job: JobOpt = None,
    stage: StageOpt = None,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON object per line, record included.")
    ] = False,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0: all).")] = 0,
) -> None:
    """List dead letters, oldest first: origin, stage and reason (--jsonl: everything)."""
    entries = _store().dead_letters(index=index, job=job, stage=stage)
    if limit:
        entries = entries[:limit]
    if jsonl:
        for _key, entry in entries:
            sys.stdout.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        return
    if not entries:
        out.print("no dead letters")
        return
    table = Table("job", "index", "origin", "id", "stage", "reason", box=None)
    for _key, e in entries:
        table.add_row(
            str(e.get("job")),
            str(e.get("index")),
            str(e.get("origin")),
            str(e.get("id") or ""),
            str(e.get("stage")),
            str(e.get("reason")),
        )
    out.print(table)


@deadletters_app.command("retry")
def retry(index: IndexOpt = None, job: JobOpt = None, stage: StageOpt = None) -> None:
    """Queue dead letters again as new jobs (same options), then remove them from the store.

    Records that failed at read or validate are left: fix the source and ingest it again.
    """
    from xlidx.jobs.app import get_app
    from xlidx.jobs.queues import check_retryable, retry_dead_letters

    check_retryable(stage)
    done = retry_dead_letters(get_app(), _store(), index=index, job=job, stage=stage)
    for old_job, n in done.expired:
        err.print(f"job {old_job} has expired; its {n} dead letter(s) stay")
    for old_job, sent in done.queued:
        out.print(f"queued {sent.docs} record(s) of job {old_job} again as job {sent.job}")
    if not done.docs and not done.left:
        out.print("no dead letters to retry")
    if done.left:
        err.print(
            f"{done.left} dead letter(s) left: they failed at read or validate, or their job "
            "expired"
        )


@deadletters_app.command("purge")
def purge(
    index: IndexOpt = None,
    job: JobOpt = None,
    stage: StageOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete dead letters for good."""
    store = _store()
    keys = [k for k, _e in store.dead_letters(index=index, job=job, stage=stage)]
    if not keys:
        out.print("no dead letters")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"purging {len(keys)} dead letter(s) needs --yes")
        typer.confirm(f"delete {len(keys)} dead letter(s)?", abort=True)
    removed = store.remove_dead_letters(keys)
    out.print(f"purged {removed} dead letter(s)")
