"""Deletions for a follower: what DST holds that SRC no longer does, by ids.

Neither engine tells a reader which documents were deleted (a deletion leaves an operation
in the shard's history, and no document). So the follower compares ids: DST's first, then
SRC's (each one scroll without sources, 5,000 ids a page), and deletes from DST the ids SRC
lacks. In that order a document written to DST while the ids are read was in SRC before
DST's ids were read, so it is in SRC's: only a document deleted from SRC can be missing
there. The cost is one scroll over each index, and DST's ids in memory (about 100 bytes
an id: some 100 MB at a million documents).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from xlidx.backends.base import Backend

__all__ = ["Reconciled", "reconcile"]

DELETE_CHUNK = 500


@dataclass(frozen=True)
class Reconciled:
    """One reconciliation: ids read on each side, documents deleted from DST, its time."""

    source_ids: int
    target_ids: int
    deleted: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "source_ids": self.source_ids,
            "target_ids": self.target_ids,
            "deleted": self.deleted,
            "seconds": round(self.seconds, 3),
        }


def reconcile(backend: Backend, source: str, target: str, *, id_field: str = "id") -> Reconciled:
    """Delete from ``target`` (an xlidx index) the documents ``source`` no longer holds; a
    source document's id is its ``id_field`` where it has one (as ingest reads it)."""
    t0 = time.monotonic()
    extra = set(backend.document_ids(target))
    held = len(extra)
    seen = 0
    for doc_id in backend.document_ids(source, id_field=id_field):
        seen += 1
        extra.discard(doc_id)
    deleted = 0
    if extra:
        for ok, _item in backend.bulk(
            _deletes(backend, target, sorted(extra)), chunk_size=DELETE_CHUNK,
            max_chunk_bytes=10_000_000, max_retries=3, initial_backoff=1.0, max_backoff=10.0,
        ):  # fmt: skip
            deleted += 1 if ok else 0  # a 404: already gone
        backend.refresh(target)
    return Reconciled(seen, held, deleted, time.monotonic() - t0)


def _deletes(backend: Backend, index: str, ids: list[str]) -> Iterator[dict[str, Any]]:
    for doc_id in ids:
        yield backend.delete_action(index, doc_id)
