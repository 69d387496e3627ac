"""How long a batch job waits out a cluster that cannot take requests, and how it shows it.

A :class:`Patience` runs one cluster call and, while the failure is transient (the one rule
of :func:`xlidx.errors.is_transient`: nothing answered, 429, 502/503/504, a node or shard
that went away, a cluster block that lifts by itself), tries it again with tenacity's
exponential backoff and jitter until ``budget`` seconds have passed since the call
began (a bulk request that made progress before failing counts from its start). Waiting is
reported every second through ``on_wait`` so a progress bar can say "waiting for the cluster
(n s)"; ``on_wait(None)`` says the wait is over, and ``should_stop`` ends a wait at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from xlidx.config import DEFAULT_RETRY_FOR, format_duration
from xlidx.errors import BackendError, is_transient

__all__ = ["Patience", "StopWaiting", "WaitReport", "is_transient", "wait_before"]

T = TypeVar("T")
WaitReport = Callable[[float | None], None]


def wait_before(wait: wait_base, attempt_number: int) -> float:
    """The seconds tenacity's ``wait`` gives after try ``attempt_number`` (1, 2, …) (pure):
    for callers that schedule the next try themselves (a Celery countdown) or tell it ahead."""
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    return float(wait(state))


class StopWaiting(Exception):
    """Raised out of a wait when ``Patience.should_stop`` says the run is stopping."""


@dataclass
class Patience:
    """Retry policy for cluster calls: a time budget (``budget`` seconds from the start of a
    call), or, with ``attempts``, a number of retries (what a queue worker wants: Celery retries
    after it)."""

    budget: float = DEFAULT_RETRY_FOR
    attempts: int | None = None
    initial: float = 0.5
    max_wait: float = 10.0
    on_wait: WaitReport | None = None
    should_stop: Callable[[], bool] | None = None  # a stopping run does not wait any longer
    sleep: Callable[[float], None] = time.sleep
    _waiting: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _stop(self) -> stop_base:
        if self.attempts is not None:
            return stop_after_attempt(self.attempts + 1)
        return stop_after_delay(self.budget)

    def _ticking_sleep(self, started: float) -> Callable[[float], None]:
        """Sleep in slices of at most a second, reporting how long the call has been failing."""

        def sleep(seconds: float) -> None:
            left = seconds
            while True:
                if self.should_stop is not None and self.should_stop():
                    raise StopWaiting
                if self.on_wait is not None:
                    self.on_wait(time.monotonic() - started)
                if left <= 0:
                    return
                step = min(1.0, left)
                self.sleep(step)
                left -= step

        return sleep

    def call(self, action: str, fn: Callable[[], T]) -> T:
        """``fn()``, tried again while it fails transiently and the budget lasts. When the
        budget is spent the last error is raised, its message saying for how long it failed."""
        started = time.monotonic()
        waited = False

        def entered_wait(_state: RetryCallState) -> None:
            nonlocal waited
            if not waited:
                waited = True
                with self._lock:
                    self._waiting += 1

        retrying = Retrying(
            stop=self._stop(),
            wait=wait_exponential(multiplier=self.initial, max=self.max_wait)
            + wait_random(0, self.initial),
            retry=retry_if_exception(is_transient),
            sleep=self._ticking_sleep(started),
            before_sleep=entered_wait,
            reraise=True,
        )
        try:
            return retrying(fn)
        except BackendError as exc:
            if waited and is_transient(exc) and self.attempts is None:
                raise type(exc)(
                    f"{exc} (still failing after waiting {format_duration(self.budget)} for the "
                    "cluster; --retry-for / XLIDX_RETRY_FOR sets how long to wait)",
                    status=exc.status,
                    details=exc.details,
                ) from exc
            raise
        finally:
            if waited:
                self._left_wait()

    def _left_wait(self) -> None:
        with self._lock:
            self._waiting -= 1
            done = self._waiting == 0
        if done and self.on_wait is not None:
            self.on_wait(None)
