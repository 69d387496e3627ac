"""The one bulk writer: prepared records (ingest), copied documents (migrate) and passage
updates (calibration) all go to the cluster through :class:`BulkWriter`, with the client
library's bulk helper (the backend's).

* Requests are bounded by both document count and bytes (``streaming_bulk``'s own chunking);
  big batches are written by a few threads at once, like ``parallel_bulk``.
* 429 is retried per item by ``streaming_bulk``; 502/503/504, timeouts and connection errors
  fail a whole request, which is sent again here (what was not yet answered) with exponential
  backoff and jitter under a :class:`~xlidx.pipeline.patience.Patience`, as are documents
  refused one by one with a transient status (:func:`~xlidx.errors.transient_status`: 429,
  502, 503, 504; the ids are fixed, so a retry never duplicates one).
* Per-item failures (mapping errors, documents that are too large, a conditional update that
  lost its race) are returned (:class:`ItemFailure`), and become dead letters with the record
  and the cluster's reason. They never stop the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from xlidx.backends.base import Backend
from xlidx.documents import DeadLetter, Prepared
from xlidx.errors import BackendError, transient_status
from xlidx.pipeline.calibration import Calibration
from xlidx.pipeline.patience import Patience
from xlidx.pipeline.write import build_document

DEFAULT_MAX_DOCS = 500
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def slice_bounds(n: int, max_docs: int, concurrency: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, end)`` slices of ``n`` actions for up to ``concurrency`` threads,
    each a whole number of ``max_docs`` requests, so that threading sends no more requests
    than one thread would (pure)."""
    if n <= 0:
        return []
    requests = -(-n // max_docs)
    slices = max(1, min(concurrency, requests))
    base, extra = divmod(requests, slices)
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(slices):
        end = min(n, start + (base + (1 if i < extra else 0)) * max_docs)
        bounds.append((start, end))
        start = end
    return bounds


@dataclass(frozen=True)
class ItemFailure:
    """One action the cluster refused for good: its id, HTTP status and error as it said it."""

    id: str
    status: int | None
    error: Any

    @property
    def reason(self) -> str:
        e = self.error
        if isinstance(e, dict):
            return f"{e.get('type')}: {e.get('reason')}"
        return str(e or f"HTTP {self.status}")


@dataclass
class WriteResult:
    indexed: int = 0  # actions done (documents written, or updated)
    dead: list[DeadLetter] = field(default_factory=list)  # one per failure, with its record
    retries: int = 0
    transient: int = 0  # of ``dead``, those the cluster turned away with a transient status
    failed: list[ItemFailure] = field(default_factory=list)


class _TurnedAway(BackendError):
    """Some documents of a request were refused for now (the rest was written)."""


@dataclass
class BulkWriter:
    """Writes index actions; one instance per run (no I/O in the constructor).

    Large batches are cut into up to ``concurrency`` contiguous slices of whole requests
    (:func:`slice_bounds`), written in parallel threads,
    each through ``streaming_bulk`` (which bounds requests by ``max_docs`` and ``max_bytes``
    and serializes every document once). A request that fails as a whole (nothing answered,
    429, 502/503/504) and documents refused one by one with a transient status are sent again
    under ``patience``: a time budget for in-process ingest, a few retries on a queue worker.
    """

    backend: Backend
    max_docs: int = DEFAULT_MAX_DOCS
    max_bytes: int = DEFAULT_MAX_BYTES
    concurrency: int = 4
    patience: Patience = field(default_factory=lambda: Patience(attempts=6))
    item_retries: int = 3  # the bulk helper's own retries of documents refused with 429

    def write(
        self,
        index: str,
        batch: Sequence[Prepared],
        *,
        model: str,
        calibration: Calibration | None = None,
    ) -> WriteResult:
        actions = [
            self.backend.index_action(
                index, p.record.id, build_document(p, model=model, calibration=calibration)
            )
            for p in batch
        ]
        return self.write_actions(actions, {p.record.id: p for p in batch})

    def write_actions(
        self, actions: Sequence[Mapping[str, Any]], records: Mapping[str, Prepared] | None = None
    ) -> WriteResult:
        """Write prepared actions; per-item failures become dead letters (with their record)."""
        records = records or {}
        n = len(actions)
        parts = [actions[a:b] for a, b in slice_bounds(n, self.max_docs, self.concurrency)]
        if len(parts) <= 1:
            results = [self._write_slice(parts[0] if parts else [], records)]
        else:
            with ThreadPoolExecutor(
                max_workers=len(parts), thread_name_prefix="xlidx-bulk"
            ) as pool:
                results = list(pool.map(lambda part: self._write_slice(part, records), parts))
        total = WriteResult()
        for r in results:
            total.indexed += r.indexed
            total.retries += r.retries
            total.transient += r.transient
            total.dead.extend(r.dead)
            total.failed.extend(r.failed)
        return total

    def _write_slice(
        self, actions: Sequence[Mapping[str, Any]], records: Mapping[str, Prepared]
    ) -> WriteResult:
        result = WriteResult()
        pending = list(actions)  # not yet written nor refused for good
        refused: dict[str, Mapping[str, Any]] = {}  # id -> the item of its last refusal for now
        tries = 0

        def send() -> None:
            nonlocal pending, tries
            tries += 1
            finished: set[str] = set()
            try:
                for ok, item in self.backend.bulk(
                    pending,
                    chunk_size=self.max_docs,
                    max_chunk_bytes=self.max_bytes,
                    max_retries=self.item_retries,
                    initial_backoff=self.patience.initial,
                    max_backoff=self.patience.max_wait,
                ):
                    info = next(iter(item.values()))
                    doc_id = str(info.get("_id"))
                    if not ok and transient_status(info.get("status")):
                        refused[doc_id] = item  # sent again below, while patience lasts
                        continue
                    finished.add(doc_id)
                    refused.pop(doc_id, None)
                    self._record(ok, item, records, result)
            finally:  # whatever was answered for good is never sent again
                pending = [a for a in pending if str(a.get("_id")) not in finished]
            if pending:
                statuses = [next(iter(refused[i].values())).get("status") for i in refused]
                status = max((s for s in statuses if s), default=503)
                raise _TurnedAway(
                    f"the cluster turned away {len(pending)} document(s) (HTTP {status})",
                    status=status,
                )

        try:
            self.patience.call("write documents", send)
        except _TurnedAway:  # patience ran out: what is still refused becomes dead letters
            for item in refused.values():
                result.transient += 1
                self._record(False, item, records, result)
        result.retries = max(0, tries - 1)
        return result

    @staticmethod
    def _record(
        ok: bool, item: Mapping[str, Any], records: Mapping[str, Prepared], result: WriteResult
    ) -> None:
        info = next(iter(item.values()))
        if ok:
            result.indexed += 1
            return
        status = info.get("status")
        failure = ItemFailure(
            str(info.get("_id")), int(status) if status else None, info.get("error")
        )
        result.failed.append(failure)
        p = records.get(failure.id)
        result.dead.append(
            DeadLetter(
                origin=p.record.origin if p else "?",
                stage="write",
                reason=f"rejected by the cluster (HTTP {status}): {failure.reason}",
                record=p.record.as_input() if p else None,
                id=failure.id,
            )
        )
