"""What an ingest is asked to do: one options type for in-process and queued ingest (pure).

A queued job carries the same options as JSON (:meth:`IngestOptions.to_dict`, read back by
:meth:`IngestOptions.from_dict`), with what its workers must load added by
:class:`xlidx.jobs.options.JobOptions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from xlidx.config import xlidx_home
from xlidx.documents import DEFAULT_MAX_DOC_BYTES, DEFAULT_TEXT_FIELDS
from xlidx.pipeline.detect import DEFAULT_MIN_CONFIDENCE
from xlidx.spec import VectorSpec


def default_checkpoints() -> Path:
    """Where checkpoints of file sources live: ``$XLIDX_HOME/checkpoints``."""
    return xlidx_home() / "checkpoints"


@dataclass(frozen=True)
class IngestOptions:
    """How to ingest into an xlidx index; every field has a default.

    ``languages`` ``None``: what an existing index was built with, else every language
    lingua knows (``()``). ``retry_for`` ``None``: the connection's (``XLIDX_RETRY_FOR``,
    else 10 minutes). ``checkpoints`` ``None``: no checkpoint, a rerun reads the whole file
    again. ``index`` is filled in by :class:`xlidx.Index`.
    """

    index: str = ""
    text_fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS
    languages: tuple[str, ...] | None = None
    translate_to: tuple[str, ...] = ()
    batch_size: int = 64
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    vector: VectorSpec = field(default_factory=VectorSpec)  # for a new index
    refresh: bool = True  # refresh the index at the end (in-process ingest)
    retry_for: float | None = None  # seconds of an unavailable cluster to wait out
    checkpoints: Path | None = field(default_factory=default_checkpoints)
    from_start: bool = False  # ignore a checkpoint: read the whole file again

    @property
    def detect_among(self) -> tuple[str, ...]:
        """The languages detection chooses among (``()``: all of them)."""
        return self.languages or ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, every field (what a queued job carries)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, VectorSpec):
                value = asdict(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IngestOptions:
        """Back from :meth:`to_dict`; keys it does not know are ignored, missing ones take
        their defaults (a job sent by an older client)."""
        given: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            value = d[f.name]
            if f.name == "vector":
                value = VectorSpec(**value)
            elif f.name == "checkpoints":
                value = Path(value) if value else None
            elif isinstance(value, list):
                value = tuple(value)
            given[f.name] = value
        return cls(**given)
