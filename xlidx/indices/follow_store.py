"""A follower's checkpoint and lock, kept in the cluster: the hidden index ``.xlidx-follow``.

One small document per (SRC, DST) pair holds the checkpoint
(:class:`~xlidx.pipeline.follow_state.FollowCheckpoint`), written after every chunk carried
into DST; another is the pair's lock (:class:`~xlidx.pipeline.follow_state.Lease`): created
with ``op_type=create`` (so two followers cannot both create it), renewed with a write
conditional on the version read (so two cannot both renew or take it over), deleted on a clean
stop, and taken over once expired. Anything that can reach the cluster can resume the
follower: no file on the machine that ran it matters.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from xlidx.backends.base import Backend
from xlidx.backends.hits import RawHit
from xlidx.errors import BackendError
from xlidx.pipeline.follow_state import (
    FollowCheckpoint,
    FollowerRunning,
    Lease,
    LockLost,
    state_ids,
)

STATE_INDEX = ".xlidx-follow"

__all__ = ["STATE_INDEX", "FollowStore", "Held"]


@dataclass
class Held:
    """The lock as this follower holds it: the lease and the version it was written at."""

    lease: Lease
    version: RawHit


class FollowStore:
    """The checkpoint and lock of ``source`` → ``target`` in ``index`` (no I/O until used)."""

    def __init__(
        self,
        backend: Backend,
        source: str,
        target: str,
        *,
        index: str = STATE_INDEX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend, self.source, self.target, self.index = backend, source, target, index
        self.lock_id, self.checkpoint_id = state_ids(source, target)
        self.clock = clock

    def ensure(self) -> None:
        self.backend.ensure_state_index(self.index)

    # -- the checkpoint ------------------------------------------------------------------------
    def load(self) -> FollowCheckpoint | None:
        found = self.backend.read_state(self.index, self.checkpoint_id)
        return FollowCheckpoint.from_json(found.source) if found is not None else None

    def save(self, checkpoint: FollowCheckpoint) -> None:
        self.backend.write_state(self.index, self.checkpoint_id, checkpoint.to_json())

    def forget(self) -> None:
        """Delete the checkpoint (the next run reads SRC whole; unchanged documents are
        skipped)."""
        self.backend.delete_state(self.index, self.checkpoint_id)

    # -- the lock ------------------------------------------------------------------------------
    def new_lease(self, seconds: float) -> Lease:
        now = self.clock()
        host = socket.gethostname()
        return Lease(
            holder=f"{host}:{os.getpid()}:{uuid.uuid4().hex[:12]}",
            host=host,
            pid=os.getpid(),
            renewed=now,
            expires=now + seconds,
        )

    def acquire(self, lease: Lease) -> Held:
        """Take the pair's lock for ``lease``: create it, or take over an expired one.
        :class:`FollowerRunning` when another follower holds it."""
        try:
            return Held(lease, self._write(lease, create=True))
        except BackendError as exc:
            if exc.status != 409:
                raise
        found = self.backend.read_state(self.index, self.lock_id)
        if found is None:  # released between the two calls: try once more
            return Held(lease, self._write(lease, create=True))
        current = Lease.from_json(found.source)
        now = self.clock()
        if not current.may_be_taken_by(lease.holder, now):
            raise FollowerRunning(
                f"another follower is already keeping {self.target} in step with "
                f"{self.source} ({current.describe(now)}); stop it first"
            )
        try:
            return Held(lease, self._write(lease, version=found))
        except BackendError as exc:
            if exc.status == 409:  # another one took it over first
                raise FollowerRunning(
                    f"another follower took over {self.source} → {self.target} just now"
                ) from None
            raise

    def renew(self, held: Held, seconds: float) -> Held:
        """Extend the lock; :class:`LockLost` when another follower took it over."""
        lease = held.lease.renewed_at(self.clock(), seconds)
        try:
            return Held(lease, self._write(lease, version=held.version))
        except BackendError as exc:
            if exc.status == 409:
                raise LockLost(
                    f"the lock on {self.source} → {self.target} was taken over by another "
                    "follower (this one could not renew it in time); stopping"
                ) from None
            raise

    def release(self, held: Held) -> None:
        self.backend.delete_state(self.index, self.lock_id, version=held.version)

    def _write(
        self, lease: Lease, *, create: bool = False, version: RawHit | None = None
    ) -> RawHit:
        body = {**lease.to_json(), "source": self.source, "target": self.target}
        return self.backend.write_state(
            self.index, self.lock_id, body, create=create, version=version
        )
