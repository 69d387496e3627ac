"""What every backend's client module shares: TLS files, and pieces of error translation."""

from __future__ import annotations

from typing import Any

from xlidx.config import ConnectionSettings, redact_text
from xlidx.errors import TLSFailed


def tls_files(settings: ConnectionSettings) -> dict[str, str]:
    """``ca_certs``, ``client_cert``, ``client_key`` as both client libraries take them."""
    files = {
        "ca_certs": settings.ca_certs,
        "client_cert": settings.client_cert,
        "client_key": settings.client_key,
    }
    return {k: str(v) for k, v in files.items() if v is not None}


def check_tls_files(settings: ConnectionSettings) -> None:
    """A configured CA bundle, certificate or key that is not a file is a clear error now,
    not a handshake failure later."""
    for label, path in (
        ("CA bundle", settings.ca_certs),
        ("client certificate", settings.client_cert),
        ("client key", settings.client_key),
    ):
        if path is not None and not path.is_file():
            raise TLSFailed(f"{label} not found: {path}")


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
