"""What following an index takes and gives (pure): :class:`FollowOptions`, one
:class:`PollReport` per poll, and the :class:`FollowSummary` of a run
(:mod:`xlidx.workflows.follow` runs it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xlidx.errors import ConfigError
from xlidx.indices.follow_store import STATE_INDEX
from xlidx.indices.reconcile import Reconciled
from xlidx.pipeline.summary import IngestSummary

__all__ = ["FollowOptions", "FollowSummary", "PollReport"]


@dataclass(frozen=True)
class FollowOptions:
    """How to follow. ``interval``: seconds between polls once caught up; ``since_field``:
    track changes by this date or number field instead of ``_seq_no``; ``reconcile_every``:
    seconds between two reconciliations of ids (deletions reach DST within it);
    ``max_docs_per_poll``: documents one poll carries at most (a checkpoint after each);
    ``from_start``: ignore the checkpoint, read SRC whole (unchanged documents are skipped);
    ``polls``: stop after this many polls (None: until stopped); ``lease``: seconds the lock
    lives without renewal (default: four intervals, at least 30 s)."""

    interval: float = 5.0
    since_field: str | None = None
    reconcile_every: float = 60.0
    max_docs_per_poll: int = 2000
    page_size: int = 500
    from_start: bool = False
    polls: int | None = None
    lease: float | None = None
    state_index: str = STATE_INDEX

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.max_docs_per_poll < 1 or self.page_size < 1:
            raise ConfigError("--interval must be more than 0, and a poll must read a document")


@dataclass
class PollReport:
    """One poll: what it read and wrote, the lag after it, a reconciliation if one ran."""

    poll: int
    at: str
    read: int = 0
    indexed: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    lag_seconds: float = 0.0
    waiting: int = 0
    caught_up: bool = True
    seconds: float = 0.0
    reconciled: Reconciled | None = None
    total_read: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "poll",
            "poll": self.poll,
            "at": self.at,
            "read": self.read,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "dead_lettered": self.dead_lettered,
            "deleted": self.deleted,
            "lag_seconds": round(self.lag_seconds, 3),
            "waiting": self.waiting,
            "caught_up": self.caught_up,
            "seconds": round(self.seconds, 3),
            "reconciled": self.reconciled.to_json() if self.reconciled else None,
            "total_read": self.total_read,
        }


@dataclass
class FollowSummary:
    """What a follower did in this run (``read_before``: documents earlier runs read)."""

    source: str = ""
    index: str = ""
    mode: str = "seq_no"
    since_field: str | None = None
    polls: int = 0
    read: int = 0
    indexed: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    reconciliations: int = 0
    seconds: float = 0.0
    lag_seconds: float = 0.0
    waiting: int = 0
    resumed: bool = False
    read_before: int = 0
    notes: list[str] = field(default_factory=list)
    languages: Counter[str] = field(default_factory=Counter)
    untranslated: Counter[str] = field(default_factory=Counter)
    dead_letter_file: str | None = None
    interrupted: bool = False
    calibration: dict[str, Any] | None = None
    calibration_error: str | None = None

    def add(self, done: IngestSummary) -> None:
        """Count one chunk's ingest."""
        self.read += done.read
        self.indexed += done.indexed
        self.unchanged += done.unchanged
        self.dead_lettered += done.dead_lettered
        self.languages.update(done.languages)
        self.untranslated.update(done.untranslated)
        self.calibration = done.calibration or self.calibration
        self.calibration_error = done.calibration_error or self.calibration_error

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "source": self.source,
            "index": self.index,
            "mode": self.mode,
            "since_field": self.since_field,
            "polls": self.polls,
            "read": self.read,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "dead_lettered": self.dead_lettered,
            "deleted": self.deleted,
            "reconciliations": self.reconciliations,
            "seconds": round(self.seconds, 3),
            "lag_seconds": round(self.lag_seconds, 3),
            "waiting": self.waiting,
            "resumed": self.resumed,
            "read_before": self.read_before,
            "notes": list(self.notes),
            "languages": dict(self.languages),
            "untranslated": dict(self.untranslated),
            "dead_letter_file": self.dead_letter_file,
            "interrupted": self.interrupted,
            "calibration": self.calibration,
            "calibration_error": self.calibration_error,
        }
