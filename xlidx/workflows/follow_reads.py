"""What one poll of a follower reads of SRC: the changes since its checkpoint, a chunk at most.

Two ways, both behind :class:`Reader`:

* :class:`BySeqNo` (the default): SRC's shard positions (one ``_stats`` request: an idle
  poll costs nothing more), then, where a primary has taken operations the checkpoint has
  not reached, SRC is refreshed and that shard is read in ``_seq_no`` order up to its global
  checkpoint. Every operation up to it is then visible, so the checkpoint can move to it: a
  change is never skipped, and a deletion shows as an operation that left no document.
* :class:`ByField` (``--since-field``): the documents whose field is at or after the last
  value read, in its order; the ids read at exactly that value are skipped.

A :class:`Chunk` is what was read, and the checkpoint it leads to once written to DST.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from xlidx.documents import RawItem
from xlidx.errors import AuthenticationFailed, BackendError, ConfigError, MappingError
from xlidx.pipeline.follow_state import FollowCheckpoint, LagClock

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.backends.changes import Change, ShardHead

__all__ = ["ByField", "BySeqNo", "Chunk", "Reader", "open_reader", "source_heads"]


@dataclass
class Chunk:
    """One poll's read: the items for ingest and the checkpoint once they are written.

    ``caught_up``: the read reached what SRC held when the poll began (else the next poll
    starts at once); ``waiting``: changes SRC holds beyond the new checkpoint (an upper
    bound of the documents waiting); ``maybe_deleted``: operations that left no document
    were passed over (a deletion, or a document written twice), so a reconciliation is
    worth its cost; ``notes``: what the reader had to start over, and why."""

    items: list[RawItem]
    checkpoint: FollowCheckpoint
    caught_up: bool
    waiting: int = 0
    maybe_deleted: bool = False
    notes: list[str] = field(default_factory=list)


class Reader(Protocol):
    def read(self, checkpoint: FollowCheckpoint, budget: int) -> Chunk: ...

    def settled(self, checkpoint: FollowCheckpoint) -> float | None:
        """The chunk's checkpoint is saved: tell the lag clock; since when (at the earliest)
        the changes it carried were waiting (None: it carried none the clock saw)."""


def source_heads(backend: Backend, source: str) -> list[ShardHead]:
    """SRC's shard positions; a one-line :class:`MappingError` when there is no SRC."""
    try:
        return backend.shard_heads(source)
    except BackendError as exc:
        if exc.status == 404:
            raise MappingError(
                f"no index {source!r} to follow on {backend.settings.display_urls} (deleted? "
                "start the follower again once it exists)"
            ) from None
        raise


def _item(change: Change) -> RawItem:
    hit = change.hit
    src = dict(hit.source)
    src.setdefault("id", hit.id)  # as --from-index reads it
    return RawItem(f"index:{hit.index}/{hit.id}", payload=src)


class BySeqNo:
    """Changes by ``_seq_no``, shard by shard."""

    def __init__(
        self, backend: Backend, source: str, lag: LagClock, *, page_size: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.backend, self.source, self.lag = backend, source, lag
        self.page_size, self.clock = page_size, clock
        self.can_refresh = True
        self._earlier: dict[str, int] = {}  # the global checkpoints of the previous poll

    def read(self, checkpoint: FollowCheckpoint, budget: int) -> Chunk:
        at = self.clock()
        heads = source_heads(self.backend, self.source)
        checkpoint, notes = checkpoint.with_heads(heads)
        if any("re-created" in n for n in notes):
            self.lag.reset()
        self.lag.observe(at, {h.key: h.max_seq_no for h in heads})
        upto = self._readable(heads, checkpoint, notes)
        items: list[RawItem] = []
        caught_up, maybe_deleted = True, False
        for h in heads:
            start = checkpoint.position(h.key)
            if start >= upto[h.key]:
                continue
            got, reached = self._read_shard(h, start, upto[h.key], budget - len(items))
            items.extend(_item(c) for c in got)
            end = upto[h.key] if reached else got[-1].position
            maybe_deleted = maybe_deleted or (end - start) > len(got)
            caught_up = caught_up and reached
            checkpoint = checkpoint.advanced(h.key, end)
            if len(items) >= budget:
                caught_up = False
                break
        return Chunk(
            items, replace(checkpoint, read=checkpoint.read + len(items)), caught_up,
            waiting=checkpoint.waiting(heads), maybe_deleted=maybe_deleted, notes=notes,
        )  # fmt: skip

    def settled(self, checkpoint: FollowCheckpoint) -> float | None:
        return self.lag.settle(checkpoint.shards)

    def _readable(
        self, heads: list[ShardHead], checkpoint: FollowCheckpoint, notes: list[str]
    ) -> dict[str, int]:
        """Up to where each shard can be read now: its global checkpoint, after a refresh of
        SRC has made every operation up to it visible. A user not allowed to refresh SRC
        reads up to the global checkpoints of the previous poll instead (older than one
        interval: visible after the index's own refresh, unless that is disabled)."""
        now = {h.key: h.global_checkpoint for h in heads}
        behind = any(checkpoint.position(k) < v for k, v in now.items())
        if behind and self.can_refresh:
            try:
                self.backend.refresh(self.source)
            except AuthenticationFailed:
                self.can_refresh = False
                notes.append(
                    f"not allowed to refresh {self.source}: changes are read one poll late"
                )
        if self.can_refresh:
            return now
        earlier, self._earlier = self._earlier, now
        return {k: min(v, earlier.get(k, -1)) for k, v in now.items()}

    def _read_shard(
        self, head: ShardHead, after: int, upto: int, budget: int
    ) -> tuple[list[Change], bool]:
        """Changes of one shard in ``(after, upto]``, at most ``budget``; whether the read
        reached ``upto``."""
        got: list[Change] = []
        while len(got) < budget:
            size = min(self.page_size, budget - len(got))
            page = self.backend.changes(head.index, head.shard, after=after, upto=upto, size=size)
            got.extend(page)
            if len(page) < size:
                return got, True
            after = int(page[-1].position)
        return got, False


class ByField:
    """Changes by a date or number field the user names (``--since-field``)."""

    def __init__(
        self, backend: Backend, source: str, field: str, kind: str, lag: LagClock, *,
        page_size: int = 500, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.backend, self.source, self.field, self.kind = backend, source, field, kind
        self.lag, self.page_size, self.clock = lag, page_size, clock
        self.polls = 0
        self._reached = False  # the last read reached every document with the field

    def read(self, checkpoint: FollowCheckpoint, budget: int) -> Chunk:
        self.polls += 1
        at = self.clock()
        source_heads(self.backend, self.source)  # SRC is still there (a one-line error if not)
        waiting = self.backend.count_since(self.source, self.field, self.kind, checkpoint.since)
        self.lag.observe(at, {"poll": self.polls} if waiting else {})
        after, at_value = checkpoint.since, set(checkpoint.since_ids)
        items: list[RawItem] = []
        size, self._reached = self.page_size, False
        while len(items) < budget:
            page = self.backend.changed_since(
                self.source, self.field, self.kind, after=after, size=size
            )
            fresh = [c for c in page if not (c.position == after and c.hit.id in at_value)]
            if not fresh and len(page) == size:
                size *= 2  # a page of documents at the value already read: look further
                continue
            take = fresh[: budget - len(items)]
            for c in take:
                if c.position != after:
                    after, at_value = c.position, set()
                at_value.add(c.hit.id)
                items.append(_item(c))
            if len(take) == len(fresh) and len(page) < size:
                self._reached = True
                break
        done = replace(
            checkpoint, since=after, since_ids=tuple(sorted(at_value)),
            read=checkpoint.read + len(items),
        )  # fmt: skip
        left = 0 if self._reached else max(0, waiting - len(items))
        return Chunk(items, done, self._reached, waiting=left, maybe_deleted=True)

    def settled(self, checkpoint: FollowCheckpoint) -> float | None:
        return self.lag.settle({"poll": self.polls}) if self._reached else None


def open_reader(
    backend: Backend, source: str, since_field: str | None, lag: LagClock, *, page_size: int
) -> Reader:
    """The reader for ``since_field`` (None: by ``_seq_no``); a one-line
    :class:`ConfigError` for a field SRC does not have, or cannot order changes by."""
    if since_field is None:
        return BySeqNo(backend, source, lag, page_size=page_size)
    kind = backend.field_kind(source, since_field)
    if kind is None:
        raise ConfigError(f"--since-field {since_field}: {source} has no field {since_field!r}")
    if not kind:
        raise ConfigError(
            f"--since-field {since_field}: the field is neither a date nor a number in {source}"
        )
    return ByField(backend, source, since_field, kind, lag, page_size=page_size)
