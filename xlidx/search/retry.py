"""Retrying a query while the cluster cannot answer it for a moment (a node restarting, a
node lost and its shards moving to their replicas).

:func:`retryable` says which failures are worth another try: the one rule of
:attr:`xlidx.errors.BackendError.transient` (nothing answered at a URL, 429, 502, 503 and
504 answers, and failures naming a node or shard copy that just went away, such as
``no_shard_available_action_exception``). A bad query, a missing index or refused
credentials fail at once.

:func:`with_retries` runs a call and, while it fails that way, tries again with tenacity's
exponential backoff (0.2 s, 0.4 s, … up to 5 s between tries) until ``budget`` seconds have
passed, reporting each retry through ``on_retry``; then it raises :class:`QueryUnavailable`,
whose one-line message says how many tries it made for how long. The client library has
already marked a node that refused a connection dead, so the next try goes to another node
of ``XLIDX_URL`` (when several are listed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from xlidx.config import format_duration
from xlidx.errors import BackendError, is_transient
from xlidx.pipeline.patience import wait_before

T = TypeVar("T")
DEFAULT_QUERY_RETRY_FOR = 30.0
FIRST_WAIT = 0.2
MAX_WAIT = 5.0
WAIT = wait_exponential(multiplier=FIRST_WAIT, max=MAX_WAIT)  # no jitter: one caller waits


class QueryUnavailable(BackendError):
    """The cluster did not answer a query within the retry budget (exit code 1)."""

    @property
    def transient(self) -> bool:
        """The retries are spent: whatever failure it carries, trying again is not the
        caller's job (its message names the last error, which may read as transient)."""
        return False


def retryable(exc: BaseException) -> bool:
    """Whether trying the same query again later may succeed (pure)."""
    return is_transient(exc) and not isinstance(exc, QueryUnavailable)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, …) (pure)."""
    return wait_before(WAIT, attempt)


def with_retries(
    fn: Callable[[], T],
    *,
    budget: float = DEFAULT_QUERY_RETRY_FOR,
    on_retry: Callable[[int, float, BackendError], None] = lambda _n, _w, _e: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``fn()``, tried again while it fails with a :func:`retryable` error and the next try
    would start within ``budget`` seconds of the first. ``on_retry(attempt, wait, error)``
    hears about each retry before its wait."""
    started = clock()

    def failure(state: RetryCallState) -> BackendError:
        exc = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(exc, BackendError)  # only retryable errors are retried
        return exc

    def out_of_time(state: RetryCallState) -> bool:
        return clock() - started + state.upcoming_sleep > budget

    def report(state: RetryCallState) -> None:
        on_retry(state.attempt_number, state.upcoming_sleep, failure(state))

    def give_up(state: RetryCallState) -> NoReturn:
        exc = failure(state)
        elapsed = clock() - started
        tries = f"{state.attempt_number} tries" if state.attempt_number > 1 else "1 try"
        raise QueryUnavailable(
            f"{exc} (gave up after {tries} in {format_duration(round(elapsed, 1))}; "
            "--retry-for sets how long a query retries)",
            status=exc.status,
            details=exc.details,
        ) from exc

    retrying = Retrying(
        stop=out_of_time,
        wait=WAIT,
        retry=retry_if_exception(retryable),
        sleep=sleep,
        before_sleep=report,
        retry_error_callback=give_up,
    )
    return retrying(fn)
