"""The queues as a whole: their status, recovering lost batches, retrying dead letters.

What ``xlidx queue status | recover`` and ``xlidx deadletters list | retry | purge`` do,
without printing: each returns a typed result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xlidx.documents import RawItem
from xlidx.errors import ConfigError, QueueError
from xlidx.jobs.settings import QUEUES, QueueSettings
from xlidx.jobs.store import JobStore
from xlidx.pipeline.summary import QueuedSummary

if TYPE_CHECKING:
    from celery import Celery

RETRYABLE_STAGES = ("detect", "translate", "embed", "write")
IN_FLIGHT_UNKNOWN = (
    "not known for this broker: RabbitMQ does not tell AMQP clients how many messages "
    "workers hold unacknowledged (`rabbitmqctl list_queues name messages_unacknowledged` "
    "does)"
)


@dataclass
class QueueStatus:
    waiting: dict[str, int]  # messages per queue
    in_flight: int | None  # taken by workers, not yet acknowledged (None: not known)
    workers: dict[str, list[str]]  # live worker -> its queues
    jobs: list[QueuedSummary] = field(default_factory=list)  # recent jobs, newest first
    dead_letters: int = 0

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "workers": self.workers,
        }
        if self.in_flight is None:
            report["in_flight_note"] = IN_FLIGHT_UNKNOWN
        report["jobs"] = [j.to_json() for j in self.jobs]
        report["dead_letters"] = self.dead_letters
        return report


def status(
    app: Celery, settings: QueueSettings, store: JobStore, *, jobs: int = 5, timeout: float = 1.0
) -> QueueStatus:
    """Queue depths, messages in flight, live workers (those answering within ``timeout``
    seconds), the ``jobs`` most recent jobs and the number of dead letters."""
    report = _broker_counts(app, settings, timeout)
    report.jobs = store.recent_jobs(jobs) if jobs else []
    report.dead_letters = store.count_dead_letters()
    return report


def _broker_counts(app: Celery, settings: QueueSettings, timeout: float) -> QueueStatus:
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

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
    return QueueStatus(waiting=waiting, in_flight=unacked, workers=workers)


def _redis_unacked(conn: Any) -> int | None:
    """Messages delivered to workers and not yet acknowledged (Redis brokers only: the
    transport keeps them in the ``unacked`` hash)."""
    client = getattr(conn.default_channel, "client", None)
    if client is None:
        return None
    return int(client.hlen("unacked"))


def recover(app: Celery, store: JobStore, job: str | None = None) -> dict[str, int]:
    """Send the unfinished batches of ``job`` (default: of every unfinished recent job) again;
    returns how many per job."""
    from xlidx.jobs.submit import resend

    if job is not None:
        if store.progress(job) is None:
            raise QueueError(f"no job {job!r} in the job store")
        jobs = [job]
    else:
        jobs = [j.job for j in store.recent_jobs(50) if j.enqueued and not j.finished]
    return {j: resend(app, store, j) for j in jobs}


@dataclass
class Retried:
    """What :func:`retry_dead_letters` did."""

    queued: list[tuple[str, QueuedSummary]] = field(default_factory=list)  # (old job, new)
    expired: list[tuple[str, int]] = field(default_factory=list)  # (job, its dead letters)
    left: int = 0  # dead letters left in the store (read/validate ones, expired jobs')

    @property
    def docs(self) -> int:
        return sum(sent.docs for _job, sent in self.queued)


def check_retryable(stage: str | None) -> None:
    if stage is not None and stage not in RETRYABLE_STAGES:
        raise ConfigError(
            f"records that failed at {stage!r} cannot be retried as they are: fix the source "
            "and ingest it again"
        )


def retry_dead_letters(
    app: Celery,
    store: JobStore,
    *,
    index: str | None = None,
    job: str | None = None,
    stage: str | None = None,
) -> Retried:
    """Queue dead letters again as new jobs (their job's options), then remove them.

    Records that failed at read or validate stay: their source must be fixed."""
    from xlidx.jobs.options import JobOptions
    from xlidx.jobs.submit import enqueue

    check_retryable(stage)
    out = Retried()
    by_job: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for key, e in store.dead_letters(index=index, job=job, stage=stage):
        if e.get("stage") in RETRYABLE_STAGES and isinstance(e.get("record"), dict):
            by_job.setdefault(str(e.get("job")), []).append((key, e))
        else:
            out.left += 1
    for old_job, group in by_job.items():
        options = store.job_options(old_job)
        if options is None:
            out.expired.append((old_job, len(group)))
            out.left += len(group)
            continue
        items = [RawItem(origin=str(e.get("origin")), payload=e["record"]) for _k, e in group]
        sent = enqueue(
            items,
            app=app,
            store=store,
            options=JobOptions.from_dict(options),
            source=f"dead letters of job {old_job}",
        )
        store.remove_dead_letters([k for k, _e in group])
        out.queued.append((old_job, sent))
    return out
