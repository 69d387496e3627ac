"""Run a chain of batch stages in overlapping threads.

Translation (CTranslate2), embedding (torch) and bulk I/O all release the GIL, so one thread
per stage with small bounded queues keeps every stage busy: the pipeline runs at about the
speed of its slowest stage instead of the sum of all. Order is preserved. An exception in any
stage stops the pipeline and is re-raised in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def run_overlapped(
    items: Iterable[T], stages: Sequence[Callable[[T], T]], *, depth: int = 2
) -> Iterator[T]:
    """Yield ``stages[-1](…stages[0](item))`` for each item, stages running concurrently."""
    if not stages:
        yield from items
        return
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=depth) for _ in range(len(stages) + 1)]

    def put(q: queue.Queue[Any], value: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def feed() -> None:
        try:
            for item in items:
                if not put(queues[0], item):
                    return
            put(queues[0], _DONE)
        except BaseException as exc:  # surfaced in the caller's thread
            put(queues[0], _Failure(exc))

    def work(i: int) -> None:
        src, dst = queues[i], queues[i + 1]
        while not stop.is_set():
            try:
                value = src.get(timeout=0.1)
            except queue.Empty:
                continue
            if value is _DONE or isinstance(value, _Failure):
                put(dst, value)
                return
            try:
                out = stages[i](value)
            except BaseException as exc:
                put(dst, _Failure(exc))
                return
            if not put(dst, out):
                return

    threads = [threading.Thread(target=feed, name="xlidx-feed", daemon=True)]
    threads += [
        threading.Thread(target=work, args=(i,), name=f"xlidx-stage-{i}", daemon=True)
        for i in range(len(stages))
    ]
    for t in threads:
        t.start()
    try:
        while True:
            value = queues[-1].get()
            if value is _DONE:
                return
            if isinstance(value, _Failure):
                raise value.exc
            yield value
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
