"""What an ingest did: one summary type, and its queued form (pure).

:class:`IngestSummary` is what an in-process ingest returns (and what
:class:`~xlidx.errors.Interrupted` carries). :class:`QueuedSummary` adds what a queued job
has besides: its id, where it came from and its batch counts. It is both the receipt of an
enqueue and the job as the job store sees it (``xlidx queue status``, ``--wait``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class IngestSummary:
    read: int = 0
    indexed: int = 0
    unchanged: int = 0
    dead_lettered: int = 0  # every record not indexed: unreadable, invalid, refused, failed
    seconds: float = 0.0
    index: str = ""
    languages: Counter[str] = field(default_factory=Counter)
    untranslated: Counter[str] = field(default_factory=Counter)  # "ja->en" -> documents
    dead_letter_file: str | None = None
    interrupted: bool = False
    resumed_after: int | None = None  # records of the source a checkpoint let this run skip
    resumed_line: int | None = None  # the source line the run resumed after
    checkpoint_note: str | None = None  # why a checkpoint was not used
    calibration: dict[str, Any] | None = None  # the calibration this run made, if any
    calibration_error: str | None = None  # why a calibration failed (the ingest went on)
    checkpointed: bool = False  # the source was a file checkpointed as it was written

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "dead_lettered": self.dead_lettered,
            "seconds": round(self.seconds, 3),
            "index": self.index,
            "languages": dict(self.languages),
            "untranslated": dict(self.untranslated),
            "dead_letter_file": self.dead_letter_file,
            "interrupted": self.interrupted,
            "resumed_after": self.resumed_after,
            "resumed_line": self.resumed_line,
            "checkpoint_note": self.checkpoint_note,
            "calibration": self.calibration,
            "calibration_error": self.calibration_error,
        }


@dataclass
class QueuedSummary(IngestSummary):
    """A queued job. ``docs`` are the records sent to the workers (valid ones), ``invalid``
    those dead-lettered here before sending (they count in ``dead_lettered`` too);
    ``batches`` and ``docs`` are known once every batch is sent (``enqueued``).

    ``receipt`` marks what an enqueue that did not wait returns: its :meth:`to_json` is what
    was sent (job, batches, docs, read, invalid); otherwise it is the job's progress.
    """

    job: str = ""
    source: str = ""
    created: float = 0.0
    enqueued: bool = False
    batches: int = 0
    batches_done: int = 0
    docs: int = 0
    invalid: int = 0
    receipt: bool = False

    @property
    def finished(self) -> bool:
        return self.enqueued and self.batches_done >= self.batches

    @property
    def docs_done(self) -> int:
        """Records sent that the workers are done with (indexed, unchanged, dead-lettered)."""
        return self.indexed + self.unchanged + self.dead_lettered - self.invalid

    @property
    def state(self) -> str:
        return "done" if self.finished else ("queued" if self.enqueued else "enqueuing")

    def to_json(self) -> dict[str, Any]:
        if self.receipt:
            return {
                "job": self.job,
                "batches": self.batches,
                "docs": self.docs,
                "read": self.read,
                "invalid": self.invalid,
            }
        return {
            "id": self.job,
            "index": self.index,
            "source": self.source,
            "created": self.created,
            "state": self.state,
            "batches": self.batches,
            "batches_done": self.batches_done,
            "read": self.read,
            "docs": self.docs,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "dead_lettered": self.dead_lettered,
            "languages": dict(self.languages),
            "untranslated": dict(self.untranslated),
        }
