"""Retrying a query while the cluster cannot answer it for a moment (a node restarting, a
node lost and its shards moving to their replicas).

:func:`retryable` says which failures are worth another try: nothing answered at a URL
(refused, reset, timed out), 429, 502, 503 and 504 answers, and searches whose shards had
no copy to answer from (``no_shard_available_action_exception``, a node that just left). A
bad query, a missing index or refused credentials fail at once.

:func:`with_retries` runs a call and, while it fails that way, tries again with exponential
backoff (0.2 s, 0.4 s, … up to 5 s between tries) until ``budget`` seconds have passed,
reporting each retry through ``on_retry``; then it raises :class:`QueryUnavailable`, whose
one-line message says how many tries it made for how long. The client library has already
marked a node that refused a connection dead, so the next try goes to another node of
``XLIDX_URL`` (when several are listed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from xlidx.config import format_duration
from xlidx.errors import BackendError, ConnectionFailed

T = TypeVar("T")
DEFAULT_QUERY_RETRY_FOR = 30.0
FIRST_WAIT = 0.2
MAX_WAIT = 5.0

# failures of a search whose shards have no live copy right now (a node just left)
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # busy, or a node in between gone
_SHARD_MARKERS = (
    "no_shard_available_action_exception",
    "NoShardAvailableActionException",
    "node_not_connected_exception",
    "node_disconnected_exception",
    "NodeNotConnectedException",
    "NodeDisconnectedException",
    "shard_not_found_exception",
    "primary shard is not active",
)


class QueryUnavailable(BackendError):
    """The cluster did not answer a query within the retry budget (exit code 1)."""


def retryable(exc: BaseException) -> bool:
    """Whether trying the same query again later may succeed (pure)."""
    if not isinstance(exc, BackendError) or isinstance(exc, QueryUnavailable):
        return False
    if isinstance(exc, ConnectionFailed) or exc.status in RETRY_STATUSES:
        return True  # not any 5xx: a 500 from a broken query would only come back again
    text = f"{exc} {exc.details!r}"
    return any(marker in text for marker in _SHARD_MARKERS)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, …) (pure)."""
    return float(min(MAX_WAIT, FIRST_WAIT * 2 ** (attempt - 1)))


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
    attempt = 0
    while True:
        try:
            return fn()
        except BackendError as exc:
            if not retryable(exc):
                raise
            attempt += 1
            wait = backoff(attempt)
            elapsed = clock() - started
            if elapsed + wait > budget:
                tries = f"{attempt} tries" if attempt > 1 else "1 try"
                raise QueryUnavailable(
                    f"{exc} (gave up after {tries} in {format_duration(round(elapsed, 1))}; "
                    "--retry-for sets how long a query retries)",
                    status=exc.status,
                    details=exc.details,
                ) from exc
            on_retry(attempt, wait, exc)
            sleep(wait)
