"""Run the service under uvicorn: bind, warn when it is open to the network without a key,
and stop cleanly on SIGTERM (the requests in flight are answered, then the process exits 0)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from xlidx.serve.settings import ServeSettings

if TYPE_CHECKING:
    from xlidx.workflows import Cluster

log = logging.getLogger("xlidx.serve")
MAX_CONNECTIONS = 256


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGTERM is an orderly stop (exit 0), not re-raised after the
    drain as uvicorn does; SIGINT keeps uvicorn's way (exit 130)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def warnings(settings: ServeSettings) -> list[str]:
    """What a person starting the service should be told (pure)."""
    out = []
    if not settings.loopback and not settings.api_keys:
        out.append(
            f"serving on {settings.host}, reachable from other machines, with no API key: "
            "anyone who can reach it can use it (pass --api-key or XLIDX_SERVE_API_KEYS)"
        )
    return out


def serve(
    settings: ServeSettings,
    cluster: Cluster,
    *,
    on_ready: Callable[[str], None] | None = None,
    access_log: bool = True,
) -> None:
    """Serve until SIGTERM or SIGINT. ``on_ready(url)`` is told where it listens."""
    from xlidx.serve.app import build_app
    from xlidx.serve.metrics import Metrics
    from xlidx.serve.service import Service

    metrics = Metrics()
    service = Service(
        settings, cluster, observe=metrics.batch,
        on_loaded=lambda name, seconds: metrics.model_load.labels(name).set(seconds),
    )  # fmt: skip
    app = build_app(service, metrics)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=30,
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        server_header=False,
        # connections beyond this are answered 503 at once: with the queues' bounds, the
        # memory the service holds stays bounded under any load
        limit_concurrency=MAX_CONNECTIONS,
    )
    server = _Server(config)
    if on_ready is not None:
        on_ready(f"{settings.scheme}://{settings.host}:{settings.port}")
    server.run()
