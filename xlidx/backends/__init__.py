"""Search engines behind one seam: :func:`open_backend` returns the :class:`Backend` for a
cluster, detected from what the cluster answers unless ``XLIDX_BACKEND`` (``--backend``, the
``backend`` key of the config file) names it.

Detection is one ``GET /``: Elasticsearch answers every request with
``X-Elastic-Product: Elasticsearch`` (its integ-test distribution answers ``GET /`` with 405),
OpenSearch names itself in ``version.distribution``.
"""

from __future__ import annotations

from typing import Any

from xlidx.backends.base import Backend, Capabilities
from xlidx.config import ENGINES, ConnectionSettings
from xlidx.errors import BackendError

__all__ = [
    "Backend",
    "Capabilities",
    "describe",
    "detect_engine",
    "engine_from_response",
    "open_backend",
]


def engine_from_response(status: int, headers: dict[str, str], body: Any) -> str | None:
    """Which engine answered ``GET /`` (pure); ``None`` when it cannot tell."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("x-elastic-product", "").lower() == "elasticsearch":
        return "elasticsearch"
    if isinstance(body, dict):
        version = body.get("version")
        if isinstance(version, dict):
            if version.get("distribution") == "opensearch":
                return "opensearch"
            tagline = str(body.get("tagline") or "")
            if "number" in version and tagline.startswith("You Know, for Search"):
                return "elasticsearch"
    if status == 405:  # only Elasticsearch's integ-test distribution refuses GET /
        return "elasticsearch"
    return None


def detect_engine(settings: ConnectionSettings) -> str:
    """The engine at ``settings`` (one request), or the one the settings name."""
    if settings.engine is not None:
        return settings.engine
    from xlidx.backends.opensearch.client import probe_root

    status, headers, body = probe_root(settings)
    engine = engine_from_response(status, headers, body)
    if engine is None:
        raise BackendError(
            f"{settings.display_urls} answered GET / with HTTP {status} and neither as "
            f"OpenSearch nor as Elasticsearch; set XLIDX_BACKEND to one of {', '.join(ENGINES)}",
            status=status,
        )
    return engine


def backend_class(engine: str) -> type[Backend]:
    if engine == "opensearch":
        from xlidx.backends.opensearch import OpenSearchBackend

        return OpenSearchBackend
    if engine == "elasticsearch":
        from xlidx.backends.elasticsearch import ElasticsearchBackend

        return ElasticsearchBackend
    raise BackendError(f"unknown backend {engine!r}: expected {' or '.join(ENGINES)}")


def open_backend(settings: ConnectionSettings) -> Backend:
    """The backend for the cluster at ``settings`` (asks the cluster when the engine is not
    configured; the client itself connects on first use)."""
    return backend_class(detect_engine(settings))(settings)


def describe(settings: ConnectionSettings) -> dict[str, Any]:
    """URL, engine, version, plugins and health of the cluster at ``settings``."""
    return open_backend(settings).describe()
