"""What decides a record's indexed form besides its content, and how to load a model again."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xlidx.documents import canonical_hash
from xlidx.pipeline.stages import EmbedderLike


def pipeline_fingerprint(
    embedding: Mapping[str, Any], *, translate_to: Iterable[str], text_fields: Iterable[str]
) -> str:
    """What, besides a record's content, decides its indexed form."""
    return canonical_hash(
        {
            "embedding": dict(embedding),
            "translate_to": sorted(translate_to),
            "text_fields": list(text_fields),
        }
    )


def model_source(embedder: EmbedderLike) -> str:
    """How to load ``embedder`` again: its directory (absolute) or hub name, else its name."""
    source = getattr(embedder, "source", None)
    if isinstance(source, str | Path) and Path(str(source)).expanduser().exists():
        return str(Path(str(source)).expanduser().resolve())
    return str(source or embedder.name)
