"""Micro-batching with back-pressure: one :class:`Batcher` per model and role (or translation
pair) groups the texts of concurrent requests into one model call.

* A request's texts are cut into chunks of at most ``max_batch``; a chunk waits in the queue
  until the batcher takes it. As soon as its last batch is done, the batcher takes the chunks
  waiting, in arrival order, until the next would pass ``max_batch`` texts, and runs ``fn`` on
  the model thread (``executor``): texts that arrived while the model was busy ride together,
  and a lone request waits for nothing. ``max_wait`` (seconds, default 0) makes a batch that
  is not full wait that long for more.
* At most ``max_queued`` texts wait at once: a request that would pass it is refused at once
  with :class:`Overloaded` (the service answers 429), so memory stays bounded under any load.
* A request's answers come back in its input order, whatever batches its chunks rode in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """The queue holds too many texts to take this request now."""

    def __init__(self, queue: str, retry_after: float) -> None:
        super().__init__(f"the {queue} queue is full: try again in {retry_after:g} s")
        self.retry_after = retry_after


@dataclass
class _Chunk(Generic[T]):
    texts: list[Any]  # texts, or whatever the queue's items are (documents to enrich)
    future: asyncio.Future[list[T]]


Observe = Callable[[str, int, int], None]  # (queue, batch size, texts still queued)


def _nothing(_queue: str, _size: int, _depth: int) -> None:
    return None


class Batcher(Generic[T]):
    """Groups the texts of concurrent :meth:`submit` calls into calls of ``fn``."""

    def __init__(
        self,
        name: str,
        fn: Callable[[list[Any]], Sequence[T]],
        *,
        executor: Executor,
        max_batch: int = 32,
        max_wait: float = 0.0,
        max_queued: int = 4096,
        observe: Observe = _nothing,
    ) -> None:
        self.name = name
        self.fn = fn
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queued = max_queued
        self.observe = observe
        self.queued = 0  # texts waiting
        self._chunks: deque[_Chunk[T]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._seconds_per_text = 0.01  # a running estimate, for Retry-After

    def retry_after(self) -> float:
        """Seconds until the queue has drained by half, rounded up to a whole second."""
        return float(max(1, round(self.queued * self._seconds_per_text / 2 + 0.5)))

    async def submit(self, texts: Sequence[Any]) -> list[T]:
        """The answers of ``fn`` for ``texts``, in order. Raises :class:`Overloaded` when
        the queue cannot take them, and whatever ``fn`` raised for a batch they rode in."""
        if not texts:
            return []
        if self.queued + len(texts) > self.max_queued:
            raise Overloaded(self.name, self.retry_after())
        self._start()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[T]]] = []
        for start in range(0, len(texts), self.max_batch):
            chunk = _Chunk(list(texts[start : start + self.max_batch]), loop.create_future())
            self._chunks.append(chunk)
            futures.append(chunk.future)
            self.queued += len(chunk.texts)
        assert self._wake is not None
        self._wake.set()
        out: list[T] = []
        for part in await asyncio.gather(*futures):
            out.extend(part)
        return out

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def close(self) -> None:
        """Stop the batcher's task (after the requests in flight have their answers)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._chunks:
                self._wake.clear()
                await self._wake.wait()
            deadline = loop.time() + self.max_wait
            while self.queued < self.max_batch and loop.time() < deadline:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            batch = self._take()
            texts = [t for c in batch for t in c.texts]
            self.queued -= len(texts)
            self.observe(self.name, len(texts), self.queued)
            t0 = time.perf_counter()
            try:
                answers = list(await loop.run_in_executor(self.executor, self.fn, texts))
            except Exception as exc:  # the batch's requests each get the error
                for c in batch:
                    if not c.future.done():
                        c.future.set_exception(exc)
                continue
            per_text = (time.perf_counter() - t0) / max(1, len(texts))
            self._seconds_per_text = 0.8 * self._seconds_per_text + 0.2 * per_text
            at = 0
            for c in batch:
                if not c.future.done():  # a request that went away is not answered
                    c.future.set_result(answers[at : at + len(c.texts)])
                at += len(c.texts)

    def _take(self) -> list[_Chunk[T]]:
        batch = [self._chunks.popleft()]
        size = len(batch[0].texts)
        while self._chunks and size + len(self._chunks[0].texts) <= self.max_batch:
            size += len(self._chunks[0].texts)
            batch.append(self._chunks.popleft())
        return batch
