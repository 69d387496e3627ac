"""Job progress and dead letters, kept in Redis so that every worker and client sees them.

Keys (all under ``xlidx:``):

* ``jobs`` - sorted set of job ids by creation time;
* ``job:<id>`` - hash: index, source, options, created, and once enqueued ``batches``,
  ``docs``, ``read`` and ``invalid``;
* ``job:<id>:done`` - hash: batch number → its result, set once (``HSETNX``): a batch
  delivered twice (a worker died after writing, before acknowledging) counts once;
* ``job:<id>:pending`` - hash: batch number → the batch as sent, until it is done, so that a
  batch whose message was lost can be sent again (``xlidx queue recover``, ``--wait``);
* ``job:<id>:deliveries`` - hash: ``batch:stage`` → times a worker started it;
* ``deadletters`` - hash: ``job:origin:id`` → the dead letter as JSON (the in-process JSONL
  fields plus ``index``, ``job`` and ``at``). Keyed, so recording one twice keeps one.

A batch's result and its dead letters are written in one atomic step (a Lua script), so a
dead letter is never recorded without its batch counting as done, nor the other way round.
Job keys expire ``JOB_TTL`` after the job was created; dead letters stay until retried or
purged.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import redis

from xlidx.config import redact_url
from xlidx.documents import DeadLetter
from xlidx.errors import QueueError
from xlidx.pipeline.summary import QueuedSummary

PREFIX = "xlidx:"
CALIBRATION_TTL = 3600  # a calibration lock left by a dead worker lapses after an hour
# atomically: asked again meanwhile -> keep the lock (the caller runs again), else release it
_CALIBRATION_DONE = """
if redis.call('GET', KEYS[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""
JOB_TTL = 30 * 24 * 3600
T = TypeVar("T")

_FINISH = """
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  return 1
end
return 0
"""


def letter_entry(job: str, letter: DeadLetter, *, index: str, at: float) -> str:
    """A dead letter as the store keeps it: the in-process JSONL fields plus job, index, time."""
    entry = {**letter.to_dict(), "index": index, "job": job, "at": at}
    return json.dumps(entry, ensure_ascii=False, default=str)


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def letter_key(job: str, letter: DeadLetter) -> str:
    return f"{job}:{letter.origin}:{letter.id or ''}"


class JobStore:
    """The Redis side of queued jobs. Connection errors become :class:`QueueError`."""

    def __init__(self, url: str, *, client: redis.Redis | None = None) -> None:
        self.url = url
        self._redis = client
        self._finish: Any = None

    @property
    def redis(self) -> Any:  # redis-py types every reply as "T | Awaitable[T]"
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.url, socket_connect_timeout=5, socket_timeout=10, decode_responses=True
            )
        return self._redis

    def _do(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except redis.RedisError as exc:
            raise QueueError(
                f"cannot {action}: the job store at {redact_url(self.url)} failed: {exc}"
            ) from exc

    def ping(self) -> None:
        self._do("reach Redis", self.redis.ping)

    # -- jobs --------------------------------------------------------------------------
    def create_job(self, job: str, *, index: str, source: str, options: Mapping[str, Any]) -> None:
        now = time.time()

        def run() -> None:
            pipe = self.redis.pipeline()
            pipe.hset(
                f"{PREFIX}job:{job}",
                mapping={
                    "index": index,
                    "source": source,
                    "created": now,
                    "options": json.dumps(dict(options)),
                },
            )
            pipe.expire(f"{PREFIX}job:{job}", JOB_TTL)
            pipe.zadd(f"{PREFIX}jobs", {job: now})
            pipe.execute()

        self._do("record the job", run)

    def mark_enqueued(self, job: str, *, batches: int, docs: int, read: int, invalid: int) -> None:
        self._do(
            "record the job",
            lambda: self.redis.hset(
                f"{PREFIX}job:{job}",
                mapping={"batches": batches, "docs": docs, "read": read, "invalid": invalid},
            ),
        )

    def save_pending(self, job: str, batch: int, payload: Mapping[str, Any]) -> None:
        def run() -> None:
            key = f"{PREFIX}job:{job}:pending"
            self.redis.hset(key, str(batch), json.dumps(dict(payload), ensure_ascii=False))
            self.redis.expire(key, JOB_TTL)

        self._do("record a batch", run)

    def pending(self, job: str) -> dict[int, dict[str, Any]]:
        """Batches sent and not yet done, as they were sent."""
        raw = self._do(
            "read pending batches", lambda: self.redis.hgetall(f"{PREFIX}job:{job}:pending")
        )
        return {int(k): json.loads(v) for k, v in raw.items()}

    def job_options(self, job: str) -> dict[str, Any] | None:
        raw = self._do("read the job", lambda: self.redis.hget(f"{PREFIX}job:{job}", "options"))
        return json.loads(raw) if raw else None

    def finish_batch(
        self,
        job: str,
        batch: int,
        result: Mapping[str, Any],
        letters: Sequence[DeadLetter],
        *,
        index: str,
    ) -> bool:
        """Record a batch's result and its dead letters, once. False when already recorded."""
        now = time.time()
        argv: list[str] = [str(batch), json.dumps(dict(result))]
        for letter in letters:
            argv += [letter_key(job, letter), letter_entry(job, letter, index=index, at=now)]

        def run() -> bool:
            if self._finish is None:
                self._finish = self.redis.register_script(_FINISH)
            keys = [
                f"{PREFIX}job:{job}:done",
                f"{PREFIX}deadletters",
                f"{PREFIX}job:{job}:pending",
            ]
            done = bool(self._finish(keys=keys, args=argv))
            self.redis.expire(f"{PREFIX}job:{job}:done", JOB_TTL)
            return done

        return self._do("record a finished batch", run)

    def add_dead_letters(self, job: str, letters: Iterable[DeadLetter], *, index: str) -> int:
        now = time.time()
        mapping: dict[Any, Any] = {
            letter_key(job, letter): letter_entry(job, letter, index=index, at=now)
            for letter in letters
        }
        if mapping:
            self._do(
                "record dead letters",
                lambda: self.redis.hset(f"{PREFIX}deadletters", mapping=mapping),
            )
        return len(mapping)

    def count_delivery(self, job: str, batch: int, stage: str, forget: Sequence[str] = ()) -> int:
        """How many times this stage of this batch has been started (this one included).

        ``forget``: the counts of the stages this start proves finished (the one before it,
        which handed the batch on), dropped in the same round trip."""

        def run() -> int:
            key = f"{PREFIX}job:{job}:deliveries"
            pipe = self.redis.pipeline()
            pipe.hincrby(key, f"{batch}:{stage}", 1)
            if forget:
                pipe.hdel(key, *(f"{batch}:{f}" for f in forget))
            pipe.expire(key, JOB_TTL)
            return int(pipe.execute()[0])

        return self._do("count a delivery", run)

    def request_calibration(self, index: str) -> bool:
        """Ask for a calibration of ``index``: True when the caller should send it, False
        when one is running (it runs again when it ends, see :meth:`calibration_done`)."""

        def run() -> bool:
            self.redis.set(f"{PREFIX}calibrate:{index}:again", "1", ex=CALIBRATION_TTL)
            return bool(
                self.redis.set(f"{PREFIX}calibrate:{index}", "1", nx=True, ex=CALIBRATION_TTL)
            )

        return self._do("request a calibration", run)

    def calibration_starts(self, index: str) -> None:
        """A calibration of ``index`` starts: the requests so far are served by it."""
        self._do(
            "start a calibration", lambda: self.redis.delete(f"{PREFIX}calibrate:{index}:again")
        )

    def calibration_done(self, index: str) -> bool:
        """A calibration of ``index`` ended: True when another was asked for meanwhile (the
        caller runs it, still holding the lock), else the lock is released."""

        def run() -> bool:
            keys = [f"{PREFIX}calibrate:{index}", f"{PREFIX}calibrate:{index}:again"]
            return bool(self.redis.eval(_CALIBRATION_DONE, 2, *keys, CALIBRATION_TTL))

        return self._do("end a calibration", run)

    def drop_calibration_lock(self, index: str) -> None:
        """Release the lock whatever was asked (a calibration that failed, or never sent)."""
        self._do("release a calibration", lambda: self.redis.delete(f"{PREFIX}calibrate:{index}"))

    def progress(self, job: str) -> QueuedSummary | None:
        def run() -> tuple[dict[str, str], dict[str, str]]:
            pipe = self.redis.pipeline()
            pipe.hgetall(f"{PREFIX}job:{job}")
            pipe.hgetall(f"{PREFIX}job:{job}:done")
            info, done = pipe.execute()
            return info, done

        info, done = self._do("read the job's progress", run)
        if not info:
            return None
        invalid = int(info.get("invalid", 0))
        p = QueuedSummary(
            job=job,
            index=info.get("index", ""),
            source=info.get("source", ""),
            created=float(info.get("created", 0)),
            enqueued="batches" in info,
            batches=int(info.get("batches", 0)),
            docs=int(info.get("docs", 0)),
            read=int(info.get("read", 0)),
            invalid=invalid,
            dead_lettered=invalid,
        )
        for raw in done.values():
            r = json.loads(raw)
            p.batches_done += 1
            p.indexed += int(r.get("indexed", 0))
            p.unchanged += int(r.get("unchanged", 0))
            p.dead_lettered += int(r.get("dead_lettered", 0))
            for key, target in (("untranslated", p.untranslated), ("languages", p.languages)):
                for k, v in (r.get(key) or {}).items():
                    target[k] += int(v)
        return p

    def recent_jobs(self, limit: int = 10) -> list[QueuedSummary]:
        ids = self._do(
            "list jobs", lambda: self.redis.zrevrange(f"{PREFIX}jobs", 0, max(0, limit - 1))
        )
        jobs = [self.progress(str(j)) for j in ids]
        return [j for j in jobs if j is not None]

    # -- dead letters --------------------------------------------------------------------
    def dead_letters(
        self, *, index: str | None = None, job: str | None = None, stage: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """(key, entry) pairs, oldest first, filtered."""
        raw = self._do("read dead letters", lambda: self.redis.hgetall(f"{PREFIX}deadletters"))
        out: list[tuple[str, dict[str, Any]]] = []
        for key, value in raw.items():
            entry = json.loads(value)
            if index is not None and entry.get("index") != index:
                continue
            if job is not None and entry.get("job") != job:
                continue
            if stage is not None and entry.get("stage") != stage:
                continue
            out.append((str(key), entry))
        out.sort(key=lambda kv: (kv[1].get("at", 0), kv[0]))
        return out

    def count_dead_letters(self) -> int:
        return int(self._do("count dead letters", lambda: self.redis.hlen(f"{PREFIX}deadletters")))

    def remove_dead_letters(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(
            self._do("remove dead letters", lambda: self.redis.hdel(f"{PREFIX}deadletters", *keys))
        )
