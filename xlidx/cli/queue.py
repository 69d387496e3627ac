"""``xlidx queue status`` and ``xlidx deadletters list | retry | purge``."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from xlidx.cli._state import err, out
from xlidx.errors import ConfigError, QueueError

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

RETRYABLE_STAGES = ("detect", "translate", "embed", "write")


def _store() -> Any:
    from workers.app import settings
    from xlidx.jobs.store import JobStore

    return JobStore(settings.state_url)


def _broker_counts(timeout: float) -> dict[str, Any]:
    """Waiting messages per queue, messages taken but not acknowledged, and live workers."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    from workers.app import app, settings
    from xlidx.jobs.settings import QUEUES

    waiting: dict[str, int] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            for q in QUEUES:
                try:
                    waiting[q] = int(channel.queue_declare(queue=q, passive=True).message_count)
                except Exception:
                    waiting[q] = 0
                    channel = conn.channel()
            unacked = _redis_unacked(conn) if settings.redis_broker else None
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except (OperationalError, RedisError, OSError) as exc:
        raise QueueError(f"cannot reach the broker at {settings.display_broker}: {exc}") from exc
    workers = {name: sorted(q["name"] for q in qs) for name, qs in sorted(replies.items())}
    report: dict[str, Any] = {"waiting": waiting, "in_flight": unacked, "workers": workers}
    if unacked is None:
        report["in_flight_note"] = IN_FLIGHT_UNKNOWN
    return report


IN_FLIGHT_UNKNOWN = (
    "not known for this broker: RabbitMQ does not tell AMQP clients how many messages "
    "workers hold unacknowledged (`rabbitmqctl list_queues name messages_unacknowledged` "
    "does)"
)


def _redis_unacked(conn: Any) -> int | None:
    """Messages delivered to workers and not yet acknowledged (Redis brokers only: the
    transport keeps them in the ``unacked`` hash)."""
    client = getattr(conn.default_channel, "client", None)
    if client is None:
        return None
    return int(client.hlen("unacked"))


@app.command("status")
def status(
    as_json: JsonOpt = False,
    jobs: Annotated[int, typer.Option("--jobs", min=0, help="Recent jobs to show.")] = 5,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for workers to answer.", min=0.1)
    ] = 1.0,
) -> None:
    """Queue depths, messages in flight, live workers, recent jobs and dead letters."""
    store = _store()
    report = _broker_counts(timeout)
    report["jobs"] = [j.to_json() for j in store.recent_jobs(jobs)] if jobs else []
    report["dead_letters"] = store.count_dead_letters()
    if as_json:
        out.print_json(json.dumps(report))
        return
    table = Table("queue", "waiting", box=None)
    for q, n in report["waiting"].items():
        table.add_row(q, str(n))
    out.print(table)
    in_flight = report["in_flight"]
    if in_flight is None:
        out.print(f"in flight: {IN_FLIGHT_UNKNOWN}")
    else:
        out.print(f"in flight: {in_flight} (taken by workers)")
    if report["workers"]:
        for name, qs in report["workers"].items():
            out.print(f"worker {name}: {','.join(qs)}")
    else:
        out.print("workers: none answered (start one with `xlidx worker`)")
    if report["jobs"]:
        jt = Table(
            "job", "index", "state", "batches", "docs", "indexed", "unchanged", "dead", box=None
        )
        for j in report["jobs"]:
            jt.add_row(
                j["id"],
                j["index"],
                j["state"],
                f"{j['batches_done']}/{j['batches']}",
                str(j["docs"]),
                str(j["indexed"]),
                str(j["unchanged"]),
                str(j["dead_lettered"]),
            )
        out.print(jt)
    out.print(f"dead letters: {report['dead_letters']}")


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
    from workers.app import app as celery_app
    from workers.submit import resend

    store = _store()
    if job is not None:
        if store.progress(job) is None:
            raise QueueError(f"no job {job!r} in the job store")
        jobs = [job]
    else:
        jobs = [j.id for j in store.recent_jobs(50) if j.enqueued and not j.finished]
    total = 0
    for j in jobs:
        n = resend(celery_app, store, j)
        total += n
        if n:
            out.print(f"job {j}: sent {n} unfinished batch(es) again")
    if not total:
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
    from workers.app import app as celery_app
    from workers.submit import enqueue
    from xlidx.documents import RawItem
    from xlidx.jobs.options import JobOptions

    if stage is not None and stage not in RETRYABLE_STAGES:
        raise ConfigError(
            f"records that failed at {stage!r} cannot be retried as they are: fix the source "
            "and ingest it again"
        )
    store = _store()
    entries = store.dead_letters(index=index, job=job, stage=stage)
    by_job: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    left = 0
    for key, e in entries:
        if e.get("stage") in RETRYABLE_STAGES and isinstance(e.get("record"), dict):
            by_job.setdefault(str(e.get("job")), []).append((key, e))
        else:
            left += 1
    queued = 0
    for old_job, group in by_job.items():
        options = store.job_options(old_job)
        if options is None:
            err.print(f"job {old_job} has expired; its {len(group)} dead letter(s) stay")
            left += len(group)
            continue
        items = [RawItem(origin=str(e.get("origin")), payload=e["record"]) for _k, e in group]
        sent = enqueue(
            items,
            app=celery_app,
            store=store,
            options=JobOptions.from_dict(options),
            source=f"dead letters of job {old_job}",
        )
        store.remove_dead_letters([k for k, _e in group])
        queued += sent.docs
        out.print(f"queued {sent.docs} record(s) of job {old_job} again as job {sent.job}")
    if not queued and not left:
        out.print("no dead letters to retry")
    if left:
        err.print(
            f"{left} dead letter(s) left: they failed at read or validate, or their job expired"
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
