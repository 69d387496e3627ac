"""What a follower (``xlidx ingest --from-index SRC --index DST --follow``) remembers, and the
arithmetic of its lock and its lag (pure).

* :class:`FollowCheckpoint`: how far SRC has been carried into DST. By ``_seq_no``, one number
  per primary shard of each concrete index behind SRC (every operation up to it is in DST),
  with each index's uuid so that a re-created SRC is noticed; by ``--since-field``, the last
  value read and the ids read at exactly that value. The checkpoint lives in the cluster
  (:mod:`xlidx.indices.follow_store`), so another machine can take over.
* :class:`Lease`: the lock on a (SRC, DST) pair: a holder, renewed while it runs, that
  expires when it stops renewing (a crashed follower's lock frees itself).
* :class:`LagClock`: seconds behind SRC, as the follower can see them: since when SRC has
  held a change the follower has not yet carried into DST (to within one poll interval).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from xlidx.errors import XlidxError

__all__ = [
    "MIN_LEASE",
    "FollowCheckpoint",
    "FollowerRunning",
    "LagClock",
    "Lease",
    "LockLost",
    "lease_seconds",
    "state_ids",
]

MIN_LEASE = 30.0  # seconds a lock lives without a renewal, at least


class FollowerRunning(XlidxError):
    """Another follower holds the lock on the same SRC and DST."""


class LockLost(XlidxError):
    """This follower's lock was taken over (it could not renew it in time)."""


def state_ids(source: str, target: str) -> tuple[str, str]:
    """The ids of the lock and the checkpoint of the pair (index names have no ``:``)."""
    return f"lock:{source}:{target}", f"checkpoint:{source}:{target}"


def lease_seconds(interval: float) -> float:
    """How long a lock lives without a renewal: four polls, and at least :data:`MIN_LEASE`."""
    return max(MIN_LEASE, 4 * interval)


@dataclass(frozen=True)
class Lease:
    """Who holds a pair's lock, and until when (epoch seconds, the holder's clock)."""

    holder: str  # unique per run: host, pid and a random token
    host: str
    pid: int
    renewed: float
    expires: float

    def expired(self, now: float) -> bool:
        return now >= self.expires

    def renewed_at(self, now: float, seconds: float) -> Lease:
        return replace(self, renewed=now, expires=now + seconds)

    def may_be_taken_by(self, holder: str, now: float) -> bool:
        """Whether ``holder`` may take this lock over: its own, or expired."""
        return holder == self.holder or self.expired(now)

    def describe(self, now: float) -> str:
        ago = max(0.0, now - self.renewed)
        left = max(0.0, self.expires - now)
        return (
            f"pid {self.pid} on {self.host}, renewed {ago:.0f}s ago; the lock expires in "
            f"{left:.0f}s unless renewed"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "host": self.host,
            "pid": self.pid,
            "renewed": self.renewed,
            "expires": self.expires,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Lease:
        return cls(
            holder=str(d.get("holder", "")),
            host=str(d.get("host", "?")),
            pid=int(d.get("pid", 0)),
            renewed=float(d.get("renewed", 0.0)),
            expires=float(d.get("expires", 0.0)),
        )


@dataclass(frozen=True)
class FollowCheckpoint:
    """How far SRC has been carried into DST.

    ``shards``: ``{"<index>/<shard>": seq_no}``, every operation of that primary up to
    ``seq_no`` is in DST (-1: none yet); ``uuids``: ``{index: uuid}`` of the concrete indices
    they belong to. ``since`` / ``since_ids``: with ``--since-field`` (``since_field``), the
    last value read and the ids read at exactly that value. ``target_index`` /
    ``target_created``: the version of DST written to (another one, a re-created DST, makes
    the checkpoint moot). ``read``: documents read by every run so far."""

    source: str
    target: str
    mode: str = "seq_no"  # or "field"
    since_field: str | None = None
    shards: Mapping[str, int] = field(default_factory=dict)
    uuids: Mapping[str, str] = field(default_factory=dict)
    since: Any = None
    since_ids: tuple[str, ...] = ()
    target_index: str = ""
    target_created: str = ""
    read: int = 0
    updated: str = ""

    def unfit_for(self, mode: str, since_field: str | None, index: str, created: str) -> str | None:
        """Why this checkpoint cannot be resumed from by a run with these settings (None: it
        can)."""
        if (self.mode, self.since_field) != (mode, since_field):
            was = f"--since-field {self.since_field}" if self.since_field else "_seq_no"
            return f"the checkpoint tracked changes by {was}"
        if (self.target_index, self.target_created) != (index, created):
            return (
                f"the checkpoint was made for another version of {self.target} "
                f"({self.target_index})"
            )
        return None

    def position(self, key: str) -> int:
        return int(self.shards.get(key, -1))

    def with_heads(self, heads: Iterable[Any]) -> tuple[FollowCheckpoint, list[str]]:
        """The checkpoint for the shards SRC has now (:class:`~xlidx.backends.changes.ShardHead`
        s): a concrete index with another uuid than recorded (SRC re-created) starts over, a
        new shard starts at -1. A shard missing from ``heads`` (its primary recovering, its
        index out of SRC's alias for now) keeps its position. Returns notes on what started
        over."""
        heads = list(heads)
        now = {h.index: h.uuid for h in heads}
        fresh = {name for name, uuid in now.items() if self.uuids.get(name) not in (None, uuid)}
        notes = [
            f"{name} was re-created (its uuid changed): read it all again (unchanged documents "
            "are skipped)"
            for name in sorted(fresh)
        ]
        shards = {k: v for k, v in self.shards.items() if k.rsplit("/", 1)[0] not in fresh}
        for h in heads:
            shards.setdefault(h.key, -1)
        return replace(self, shards=shards, uuids={**self.uuids, **now}), notes

    def advanced(self, key: str, seq_no: int) -> FollowCheckpoint:
        """With shard ``key`` done up to ``seq_no`` (never moved back)."""
        return replace(self, shards={**self.shards, key: max(self.position(key), seq_no)})

    def waiting(self, heads: Iterable[Any]) -> int:
        """Operations SRC took that are not in DST yet: an upper bound of the documents
        waiting (a document written twice counts twice, a deletion once)."""
        return sum(max(0, h.max_seq_no - self.position(h.key)) for h in heads)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "mode": self.mode,
            "since_field": self.since_field,
            "shards": dict(self.shards),
            "uuids": dict(self.uuids),
            "since": self.since,
            "since_ids": list(self.since_ids),
            "target_index": self.target_index,
            "target_created": self.target_created,
            "read": self.read,
            "updated": self.updated,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FollowCheckpoint:
        return cls(
            source=str(d.get("source", "")),
            target=str(d.get("target", "")),
            mode=str(d.get("mode", "seq_no")),
            since_field=d.get("since_field"),
            shards={str(k): int(v) for k, v in (d.get("shards") or {}).items()},
            uuids={str(k): str(v) for k, v in (d.get("uuids") or {}).items()},
            since=d.get("since"),
            since_ids=tuple(str(i) for i in d.get("since_ids") or ()),
            target_index=str(d.get("target_index", "")),
            target_created=str(d.get("target_created", "")),
            read=int(d.get("read", 0)),
            updated=str(d.get("updated", "")),
        )


class LagClock:
    """Seconds behind SRC: since when SRC has held a change not yet in DST, as far as polls can
    tell.

    Each poll :meth:`observe` s SRC's heads (``{key: position}``: the last ``_seq_no`` per
    shard, or a poll number with ``--since-field``) at the time it read them. A change first
    seen by an observation was made after the observation before it: that earlier time is
    the change's *since*, an upper bound of its age (exact to within one poll interval).
    :meth:`settle` says how far DST is (``{key: position}``) and returns the oldest *since* it
    reached; :meth:`lag` is the age of the oldest *since* DST has not reached (0: caught up)."""

    def __init__(self) -> None:
        self._seen: list[tuple[float, dict[str, int]]] = []  # (since, heads)
        self._last: float | None = None  # when SRC was last observed

    def observe(self, at: float, heads: Mapping[str, int]) -> None:
        """SRC's ``heads`` read at ``at`` (empty: nothing waits)."""
        since = self._last if self._last is not None else at
        self._last = at
        heads = dict(heads)
        last = self._seen[-1][1] if self._seen else None
        if not heads or (
            last is not None and all(k in last and v <= last[k] for k, v in heads.items())
        ):
            return  # nothing new since the last observation
        self._seen.append((since, heads))

    def settle(self, done: Mapping[str, int]) -> float | None:
        """Forget the observations DST has reached (a key ``done`` lacks is gone: reached);
        the oldest *since* among them (None: none reached now)."""
        reached = [
            since
            for since, heads in self._seen
            if not any(k in done and done[k] < v for k, v in heads.items())
        ]
        self._seen = [
            (since, heads)
            for since, heads in self._seen
            if any(k in done and done[k] < v for k, v in heads.items())
        ]
        return min(reached) if reached else None

    def reset(self) -> None:
        self._seen.clear()

    def lag(self, now: float) -> float:
        return max(0.0, now - self._seen[0][0]) if self._seen else 0.0
