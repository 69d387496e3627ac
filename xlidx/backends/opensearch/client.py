"""OpenSearch client construction and error translation.

``client_kwargs`` is pure (settings in, keyword arguments out) and unit-tested; ``make_client``
builds an ``opensearchpy.OpenSearch`` without touching the network; ``call`` runs one client
call and turns whatever opensearch-py raises into an :class:`~xlidx.errors.BackendError`
subclass with a one-line, credential-free message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from opensearchpy import OpenSearch
from opensearchpy import exceptions as osx

from xlidx.backends._errors import (
    check_tls_files,
    is_tls_problem,
    root_cause,
    secret_free,
    tls_files,
)
from xlidx.config import ConnectionSettings
from xlidx.errors import (
    AuthenticationFailed,
    BackendError,
    ConnectionFailed,
    TLSFailed,
)

T = TypeVar("T")

# opensearch-py logs every failed request at WARNING with a traceback; the CLI reports
# failures itself, so keep the library quiet unless the user asks for --verbose.
logging.getLogger("opensearch").addHandler(logging.NullHandler())


def client_kwargs(settings: ConnectionSettings) -> dict[str, Any]:
    """Keyword arguments for ``opensearchpy.OpenSearch`` (pure)."""
    kwargs: dict[str, Any] = {
        "hosts": list(settings.urls),
        "timeout": settings.timeout,
        # a node that refuses the connection hands the request to the next node listed (a
        # node lost from a cluster); any other retry is the caller's policy (bulk writer,
        # workers, query retries), so no status is retried here and no timeout either
        "max_retries": len(settings.urls) - 1,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "verify_certs": settings.verify_certs,
        "ssl_show_warn": settings.verify_certs,
        "pool_maxsize": 8,  # the bulk writer sends from several threads
    }
    if settings.username is not None:
        password = settings.password.get() if settings.password else ""
        kwargs["http_auth"] = (settings.username, password)
    if settings.api_key is not None:
        kwargs["headers"] = {"Authorization": f"ApiKey {settings.api_key.get()}"}
    kwargs.update(tls_files(settings))
    return kwargs


def make_client(settings: ConnectionSettings) -> OpenSearch:
    """An OpenSearch client for ``settings``. Does no I/O."""
    check_tls_files(settings)
    try:
        return OpenSearch(**client_kwargs(settings))
    except osx.ImproperlyConfigured as exc:
        raise BackendError(f"invalid connection settings: {secret_free(exc, settings)}") from None


def _is_tls_problem(exc: BaseException) -> bool:
    def nested(cur: Any) -> list[Any]:
        return [cur.info] if isinstance(cur, osx.TransportError) else []

    return is_tls_problem(exc, (osx.SSLError,), nested)


def translate_error(exc: Exception, settings: ConnectionSettings, action: str) -> BackendError:
    """Map an opensearch-py exception to xlidx's error tree (pure)."""
    where = settings.display_urls
    if isinstance(exc, osx.ConnectionError):
        if _is_tls_problem(exc):
            hint = (
                "pass the cluster's CA with --ca-certs / XLIDX_CA_CERTS"
                if settings.verify_certs
                else "check the client certificate and key"
            )
            detail = secret_free(root_cause(exc.info), settings)
            return TLSFailed(f"TLS handshake with {where} failed ({detail}); {hint}")
        if isinstance(exc, osx.ConnectionTimeout):
            return ConnectionFailed(
                f"{where} did not answer within {settings.timeout:g}s while trying to {action}"
            )
        detail = secret_free(root_cause(exc.info), settings)
        return ConnectionFailed(f"cannot connect to {where} to {action}: {detail}")
    if isinstance(exc, osx.AuthenticationException | osx.AuthorizationException):
        status = exc.status_code if isinstance(exc.status_code, int) else None
        what = "rejected the credentials" if status == 401 else "denied permission"
        return AuthenticationFailed(
            f"{where} {what} (HTTP {status}) while trying to {action}; check "
            "--username/--password (XLIDX_USERNAME/XLIDX_PASSWORD) or the API key",
            status=status,
        )
    if isinstance(exc, osx.TransportError):
        status = exc.status_code if isinstance(exc.status_code, int) else None
        detail = secret_free(root_cause(exc.info) or exc.error, settings)
        return BackendError(
            f"{where} answered HTTP {status} while trying to {action}: {detail}",
            status=status,
            details=exc.info if isinstance(exc.info, dict) else None,
        )
    return BackendError(f"{action} failed: {secret_free(exc, settings)}")


def call(settings: ConnectionSettings, action: str, fn: Callable[[], T]) -> T:
    """Run one client call, translating its errors. ``action`` completes 'while trying to …'."""
    try:
        return fn()
    except (osx.OpenSearchException, osx.ImproperlyConfigured) as exc:
        raise translate_error(exc, settings, action) from exc


def probe_root(settings: ConnectionSettings) -> tuple[int, dict[str, str], Any]:
    """``GET /`` with the configured TLS and credentials: status, headers and JSON body.

    Used to tell the engines apart, so an error status is an answer, not a failure.
    """
    import json

    client = make_client(settings)

    def ask(conn: Any) -> tuple[int, Any, Any]:
        status, headers, raw = conn.perform_request(
            "GET", "/", ignore=(400, 401, 403, 404, 405, 406, 500, 503)
        )
        return status, headers, raw

    def get() -> tuple[int, dict[str, str], Any]:
        # each node listed in turn: one that refuses (a node down) is not the cluster's answer
        nodes = list(getattr(client.transport.connection_pool, "connections", None) or [])
        last: Exception | None = None
        for conn in nodes or [client.transport.get_connection()]:
            try:
                status, headers, raw = ask(conn)
                break
            except osx.ConnectionError as exc:
                last = exc
        else:
            assert last is not None
            raise last
        lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
        if status in (401, 403) and lowered.get("x-elastic-product") != "Elasticsearch":
            raise osx.AuthenticationException(status, "authentication failed", raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return int(status), {str(k): str(v) for k, v in dict(headers).items()}, body

    return call(settings, "identify the cluster", get)
