"""Which embedding model a workflow uses when the caller names none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xlidx.config import env_embed_model

DEFAULT_MODEL = "usem3"


def named_model(flag: str | None, recorded: Mapping[str, Any] | None) -> str | None:
    """--model, else $XLIDX_EMBED_MODEL, else what the index records; None when none names
    one (queued ingest then asks the embed workers for theirs)."""
    found = flag or env_embed_model()
    if not found and recorded:
        found = recorded.get("source") or recorded.get("model")
    return str(found) if found else None


def resolve_model(flag: str | None, recorded: Mapping[str, Any] | None) -> str:
    """--model, else $XLIDX_EMBED_MODEL, else what the index records, else usem3."""
    return named_model(flag, recorded) or DEFAULT_MODEL
