"""Queue settings, read from the environment once and checked against each other.

=============================  ===============================================  ============
variable                       meaning                                          default
=============================  ===============================================  ============
``XLIDX_BROKER_URL``           Celery broker: ``redis://…`` or ``amqp://…``     redis://127.0.0.1:6379/0
``XLIDX_STATE_URL``            Redis for job progress and dead letters          the broker, if Redis
``XLIDX_RESULT_BACKEND``       Celery result backend (model descriptions only)  the state Redis
``XLIDX_VISIBILITY_TIMEOUT``   seconds before an unacknowledged task is         3600
                               delivered again (Redis brokers)
``XLIDX_TASK_TIME_LIMIT``      hard limit per task, seconds (the process is     1800
                               killed)
``XLIDX_TASK_SOFT_TIME_LIMIT`` soft limit per task, seconds (the batch is       0.8 x hard
                               dead-lettered)
``XLIDX_RETRY_BACKOFF_MAX``    longest wait between retries, seconds            300
``XLIDX_TASK_MAX_RETRIES``     retries of a transient failure before the        10
                               batch is dead-lettered
``XLIDX_DESCRIBE_TIMEOUT``     how long ``ingest --queue`` waits for an embed   120
                               worker to describe the model of a new index
``XLIDX_RECOVER_AFTER``        ``ingest --queue --wait`` sends a job's          visibility
                               unfinished batches again when none finished for  timeout + 120
                               this long
=============================  ===============================================  ============

A task must finish, or wait for its next retry, before the broker hands its message to
another worker. With Redis, ``hard limit + longest backoff < visibility timeout`` is enforced.
RabbitMQ has no visibility timeout (a message comes back as soon as the connection of the
worker holding it drops), so the rule and ``XLIDX_VISIBILITY_TIMEOUT`` do not apply, and
``XLIDX_RECOVER_AFTER`` defaults to ``hard limit + longest backoff + 120``; its own limit is
the broker's ``consumer_timeout`` (30 min by default), which closes the channel of a delivery
unacknowledged for longer: it must exceed ``hard limit + longest backoff`` (the defaults,
1800 s + 300 s, do not fit under RabbitMQ's default). A client cannot read it, so it is not
checked here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from xlidx.config import queue_env, redact_url
from xlidx.errors import ConfigError

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
QUEUES: tuple[str, ...] = ("translate", "embed", "write")


def _is_redis(url: str) -> bool:
    return urlsplit(url).scheme in {"redis", "rediss", "unix"}


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class QueueSettings:
    broker_url: str = DEFAULT_BROKER_URL
    state_url: str = DEFAULT_BROKER_URL
    result_backend: str = DEFAULT_BROKER_URL
    visibility_timeout: float = 3600.0
    time_limit: float = 1800.0
    soft_time_limit: float = 1440.0
    retry_backoff_max: float = 300.0
    max_retries: int = 10
    describe_timeout: float = 120.0
    recover_after: float = 3720.0

    def __post_init__(self) -> None:
        if not self.soft_time_limit < self.time_limit:
            raise ConfigError(
                f"the soft time limit ({self.soft_time_limit:g}s) must be below the hard one "
                f"({self.time_limit:g}s)"
            )
        if (
            self.redis_broker
            and self.time_limit + self.retry_backoff_max >= self.visibility_timeout
        ):
            raise ConfigError(
                f"XLIDX_VISIBILITY_TIMEOUT ({self.visibility_timeout:g}s) must exceed the task "
                f"time limit plus the longest retry backoff ({self.time_limit:g}s + "
                f"{self.retry_backoff_max:g}s), or a slow task is delivered twice"
            )
        if self.max_retries < 0:
            raise ConfigError(f"XLIDX_TASK_MAX_RETRIES must be 0 or more, got {self.max_retries}")

    @property
    def redis_broker(self) -> bool:
        """Redis is the broker: the visibility timeout applies (not with RabbitMQ)."""
        return _is_redis(self.broker_url)

    @property
    def display_broker(self) -> str:
        return redact_url(self.broker_url)

    @property
    def display_state(self) -> str:
        return redact_url(self.state_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> QueueSettings:
        """Read and check the variables above (from ``env``, default the process's)."""
        env = queue_env(env)
        broker = env.get("XLIDX_BROKER_URL", "").strip() or DEFAULT_BROKER_URL
        scheme = urlsplit(broker).scheme
        if scheme not in {"redis", "rediss", "unix", "amqp", "amqps", "pyamqp"}:
            raise ConfigError(
                f"XLIDX_BROKER_URL must be a redis:// or amqp:// URL, got {redact_url(broker)!r}"
            )
        state = env.get("XLIDX_STATE_URL", "").strip() or (broker if _is_redis(broker) else "")
        if not state:
            raise ConfigError(
                "with a RabbitMQ broker, set XLIDX_STATE_URL to a Redis URL: xlidx keeps job "
                "progress and dead letters there"
            )
        if not _is_redis(state):
            raise ConfigError(f"XLIDX_STATE_URL must be a redis:// URL, got {redact_url(state)!r}")
        hard = _number(env, "XLIDX_TASK_TIME_LIMIT", 1800.0)
        backoff = _number(env, "XLIDX_RETRY_BACKOFF_MAX", 300.0)
        visibility = _number(env, "XLIDX_VISIBILITY_TIMEOUT", 3600.0)
        # how long a lost worker's messages take to come back: the visibility timeout with
        # Redis; with RabbitMQ at once, so only as long as a batch may legitimately take
        came_back = visibility if _is_redis(broker) else hard + backoff
        raw_retries = env.get("XLIDX_TASK_MAX_RETRIES", "").strip() or "10"
        if not raw_retries.isdigit():
            raise ConfigError(f"XLIDX_TASK_MAX_RETRIES must be a whole number, got {raw_retries!r}")
        return cls(
            broker_url=broker,
            state_url=state,
            result_backend=env.get("XLIDX_RESULT_BACKEND", "").strip() or state,
            visibility_timeout=visibility,
            time_limit=hard,
            soft_time_limit=_number(env, "XLIDX_TASK_SOFT_TIME_LIMIT", round(hard * 0.8, 3)),
            retry_backoff_max=backoff,
            max_retries=int(raw_retries),
            describe_timeout=_number(env, "XLIDX_DESCRIBE_TIMEOUT", 120.0),
            recover_after=_number(env, "XLIDX_RECOVER_AFTER", came_back + 120.0),
        )


def retry_delay(attempt: int, *, cap: float, base: float = 1.0, jitter: float = 0.5) -> float:
    """Exponential backoff with jitter, by tenacity: ``base·2^attempt`` capped at ``cap``
    (``wait_exponential``), then scaled by a random factor in ``[1 - jitter, 1]`` so that
    retries from many tasks spread out. The task retries through the broker with this
    countdown, so tenacity's wait is computed here rather than slept."""
    from tenacity import wait_exponential

    from xlidx.pipeline.patience import wait_before

    # tenacity waits base·2^(attempt_number - 1) after try attempt_number
    delay = wait_before(wait_exponential(multiplier=base, max=cap), max(0, attempt) + 1)
    return delay * (1.0 - jitter * random.random())  # noqa: S311 - jitter, not crypto
