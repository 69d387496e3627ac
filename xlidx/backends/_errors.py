"""Pieces of error translation that every backend shares (pure)."""

from __future__ import annotations

from typing import Any

from xlidx.config import ConnectionSettings, redact_text


def secret_free(obj: object, settings: ConnectionSettings) -> str:
    secrets = tuple(s.get() for s in (settings.password, settings.api_key) if s is not None)
    return redact_text(str(obj), secrets)


def root_cause(info: Any) -> str:
    """The most useful line from an error body or an underlying exception."""
    if isinstance(info, dict):
        err = info.get("error")
        if isinstance(err, dict):
            causes = err.get("root_cause") or [err]
            first = causes[0] if causes else err
            return f"{first.get('type', 'error')}: {first.get('reason', '')}".strip(": ")
        if err is not None:
            return str(err)
    if isinstance(info, BaseException):
        # urllib3 nests the interesting part several levels down
        inner: BaseException = info
        while inner.__cause__ is not None or getattr(inner, "reason", None) is not None:
            nxt = inner.__cause__ or getattr(inner, "reason", None)
            if not isinstance(nxt, BaseException) or nxt is inner:
                break
            inner = nxt
        return str(inner)
    return str(info) if info else ""
