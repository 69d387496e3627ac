"""What every backend's client module shares: TLS files, and pieces of error translation."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
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


def is_tls_problem(
    exc: BaseException,
    tls_types: tuple[type[BaseException], ...],
    nested: Callable[[Any], Iterable[Any]],
) -> bool:
    """Whether ``exc``, or anything it wraps, is a TLS failure. ``tls_types``: the client
    library's TLS exceptions; ``nested``: what else one of its exceptions wraps."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, (ssl.SSLError, *tls_types)):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(cur) or "SSL" in type(cur).__name__:
            return True
        todo.extend(nested(cur))
        if isinstance(cur, BaseException):
            todo.extend([cur.__cause__, cur.__context__, getattr(cur, "reason", None)])
    return False
