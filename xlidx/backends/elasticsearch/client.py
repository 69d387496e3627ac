"""Elasticsearch client construction and error translation (elasticsearch-py 8).

``client_kwargs`` is pure (settings in, keyword arguments out) and unit-tested;
``make_client`` builds an ``elasticsearch.Elasticsearch`` without touching the network;
``call`` runs one client call and turns whatever elasticsearch-py raises into a
:class:`~xlidx.errors.BackendError` subclass with a one-line, credential-free message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from xlidx.backends._errors import (
    check_tls_files,
    is_tls_problem,
    root_cause,
    secret_free,
    tls_files,
)
from xlidx.config import ConnectionSettings
from xlidx.errors import AuthenticationFailed, BackendError, ConnectionFailed, TLSFailed

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

T = TypeVar("T")

# elasticsearch-py and elastic-transport log every failed request; the CLI reports failures
for _name in ("elasticsearch", "elastic_transport"):
    logging.getLogger(_name).addHandler(logging.NullHandler())
    logging.getLogger(_name).propagate = False


def client_kwargs(settings: ConnectionSettings) -> dict[str, Any]:
    """Keyword arguments for ``elasticsearch.Elasticsearch`` (pure)."""
    kwargs: dict[str, Any] = {
        "hosts": list(settings.urls),
        "request_timeout": settings.timeout,
        # a node that refuses the connection hands the request to the next node listed (a
        # node lost from a cluster); any other retry is the caller's policy (bulk writer,
        # workers, query retries), so no status is retried here and no timeout either
        "max_retries": len(settings.urls) - 1,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "verify_certs": settings.verify_certs,
        "ssl_show_warn": settings.verify_certs,
        "connections_per_node": 8,  # the bulk writer sends from several threads
    }
    if settings.username is not None:
        password = settings.password.get() if settings.password else ""
        kwargs["basic_auth"] = (settings.username, password)
    if settings.api_key is not None:
        kwargs["api_key"] = settings.api_key.get()
    kwargs.update(tls_files(settings))
    return kwargs


def make_client(settings: ConnectionSettings) -> Elasticsearch:
    """An Elasticsearch client for ``settings``. Does no I/O."""
    from elasticsearch import Elasticsearch

    check_tls_files(settings)
    try:
        return Elasticsearch(**client_kwargs(settings))
    except (ValueError, TypeError) as exc:
        raise BackendError(f"invalid connection settings: {secret_free(exc, settings)}") from None


def _is_tls_problem(exc: BaseException) -> bool:
    import elastic_transport

    def nested(cur: Any) -> list[Any]:
        return list(cur.errors) if isinstance(cur, elastic_transport.TransportError) else []

    return is_tls_problem(exc, (elastic_transport.TlsError,), nested)


def _api_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return root_cause(body)
    return str(getattr(exc, "message", "") or body or exc)


def translate_error(exc: Exception, settings: ConnectionSettings, action: str) -> BackendError:
    """Map an elasticsearch-py exception to xlidx's error tree (pure)."""
    import elastic_transport
    import elasticsearch

    where = settings.display_urls
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        return BackendError(
            f"{where} is not Elasticsearch (it did not send X-Elastic-Product) while trying to "
            f"{action}; set XLIDX_BACKEND=opensearch for an OpenSearch cluster"
        )
    if isinstance(exc, elastic_transport.ConnectionError):
        if _is_tls_problem(exc):
            hint = (
                "pass the cluster's CA with --ca-certs / XLIDX_CA_CERTS"
                if settings.verify_certs
                else "check the client certificate and key"
            )
            detail = secret_free(root_cause(exc.errors[0] if exc.errors else exc), settings)
            return TLSFailed(f"TLS handshake with {where} failed ({detail}); {hint}")
        detail = secret_free(root_cause(exc.errors[0] if exc.errors else exc), settings)
        return ConnectionFailed(f"cannot connect to {where} to {action}: {detail}")
    if isinstance(exc, elastic_transport.ConnectionTimeout):
        return ConnectionFailed(
            f"{where} did not answer within {settings.timeout:g}s while trying to {action}"
        )
    if isinstance(
        exc, elasticsearch.AuthenticationException | elasticsearch.AuthorizationException
    ):
        status = exc.meta.status
        what = "rejected the credentials" if status == 401 else "denied permission"
        return AuthenticationFailed(
            f"{where} {what} (HTTP {status}) while trying to {action}; check "
            "--username/--password (XLIDX_USERNAME/XLIDX_PASSWORD) or the API key",
            status=status,
        )
    if isinstance(exc, elasticsearch.ApiError):
        status = exc.meta.status if isinstance(exc.meta.status, int) else None
        detail = secret_free(_api_detail(exc), settings)
        return BackendError(
            f"{where} answered HTTP {status} while trying to {action}: {detail}",
            status=status,
            details=exc.body if isinstance(exc.body, dict) else None,
        )
    if isinstance(exc, elastic_transport.SerializationError):
        return BackendError(
            f"{where} sent an answer xlidx cannot read while trying to {action}: "
            f"{secret_free(exc.message, settings)}"
        )
    if isinstance(exc, elastic_transport.TransportError):
        return ConnectionFailed(
            f"cannot reach {where} to {action}: {secret_free(exc.message, settings)}"
        )
    return BackendError(f"{action} failed: {secret_free(exc, settings)}")


def call(settings: ConnectionSettings, action: str, fn: Callable[[], T]) -> T:
    """Run one client call, translating its errors. ``action`` completes 'while trying to …'."""
    import elastic_transport
    import elasticsearch

    try:
        return fn()
    except (
        elasticsearch.ApiError,
        elasticsearch.UnsupportedProductError,
        elastic_transport.TransportError,
    ) as exc:
        raise translate_error(exc, settings, action) from exc
