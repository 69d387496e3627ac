"""Documents already in an index: skip the unchanged ones of a batch, read a whole index."""

from __future__ import annotations

from collections.abc import Iterator

from xlidx.backends.base import Backend
from xlidx.documents import RawItem
from xlidx.errors import BackendError
from xlidx.pipeline.patience import Patience, is_transient
from xlidx.pipeline.stages import Batch

MAX_FRUITLESS_REOPENS = 5


def skip_unchanged(backend: Backend, index: str, batch: Batch) -> Batch:
    if not batch.prepared:
        return batch
    ids = [p.record.id for p in batch.prepared]
    found = backend.mget(index, ids, includes=["xlidx.content_hash"])
    known = {i: (src.get("xlidx") or {}).get("content_hash") for i, src in found.items()}
    keep = [p for p in batch.prepared if known.get(p.record.id) != p.record.content_hash]
    batch.unchanged += len(batch.prepared) - len(keep)
    batch.prepared = keep
    return batch


def read_index(
    backend: Backend, index: str, *, batch_size: int = 500, retry_for: float = 0.0
) -> Iterator[RawItem]:
    """Every document of an existing index on the cluster (scroll), as raw items.

    The document's ``_id`` becomes the record id unless the source has an ``id`` field. When
    the cluster fails while reading, or the scroll is lost (it expired, or its node
    restarted), the read waits for the cluster for up to ``retry_for`` seconds, opens a new
    scroll and skips the hits it already gave (their index and id are kept in memory); a
    scroll reopened ``MAX_FRUITLESS_REOPENS`` times in a row without a new hit gives up.
    """
    given: set[tuple[str, str]] = set()
    patience = Patience(budget=retry_for)
    fruitless = 0
    while True:
        before = len(given)
        try:
            for hit in backend.documents(index, size=batch_size):
                key = (hit.index, hit.id)
                if key in given:
                    continue
                given.add(key)
                src = dict(hit.source)
                src.setdefault("id", hit.id)
                yield RawItem(f"index:{hit.index}/{hit.id}", payload=src)
            return
        except BackendError as exc:
            lost = exc.status == 404 and "search_context_missing" in str(exc.details or exc)
            fruitless = 0 if len(given) > before else fruitless + 1
            if not (lost or is_transient(exc)) or retry_for <= 0:
                raise
            if fruitless > MAX_FRUITLESS_REOPENS:
                raise
            patience.call(f"read {index}", lambda: backend.count(index))  # the cluster is back
