"""``GET /metrics`` in Prometheus's text format (``prometheus-client``), on a registry of the
service's own: requests and their latency by endpoint and status, batch sizes and queue depth
by queue, and each model's load time. Endpoints are labelled by their route
(``/indices/{name}/search``), never by the raw path, so the label set stays bounded."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "xlidx_serve_requests", "Requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "xlidx_serve_request_seconds", "Time to answer a request, by endpoint.",
            ["endpoint"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        self.batch_size = Histogram(
            "xlidx_serve_batch_size", "Texts per model call, by queue.", ["queue"],
            registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )  # fmt: skip
        self.queue_depth = Gauge(
            "xlidx_serve_queue_depth", "Texts waiting, by queue.", ["queue"],
            registry=self.registry,
        )  # fmt: skip
        self.model_load = Gauge(
            "xlidx_serve_model_load_seconds", "Seconds it took to load (and first run) a model.",
            ["model"], registry=self.registry,
        )  # fmt: skip

    def batch(self, queue: str, size: int, depth: int) -> None:
        """A batcher's report of one model call (:data:`xlidx.serve.batching.Observe`)."""
        self.batch_size.labels(queue).observe(size)
        self.queue_depth.labels(queue).set(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: nothing is buffered)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]
        t0 = time.perf_counter()

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
