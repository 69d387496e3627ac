"""The HTTP routes of ``xlidx serve`` (FastAPI): each parses its request, calls
:class:`~xlidx.serve.service.Service`, and shapes the answer in its client's format. No
workflow logic lives here.

Errors are one line of JSON, never a traceback: ``{"error": {"message", "type", "code"}}``
under ``/v1`` (OpenAI's shape, which its client reads), ``{"error": "..."}`` elsewhere
(LibreTranslate's and text-embeddings-inference's). Statuses: 400 bad JSON or a bad value,
401 no or a wrong API key, 404 an index or model not served, 409 an index that does not fit
the request, 413 a request over the size limits, 422 a wrong type, 429 a full queue (with
``Retry-After`` and ``x-amzn-ErrorType: ThrottlingException``, on which OpenSearch's
connectors retry), 502/503 the cluster failing (503: for now), 500 anything else.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xlidx.errors import (
    BackendError,
    ConfigError,
    IndexNotFound,
    MappingError,
    ModelError,
    XlidxError,
)
from xlidx.query.options import QueryOptions
from xlidx.serve.batching import Overloaded
from xlidx.serve.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from xlidx.serve.schemas import (
    DetectRequest,
    EmbeddingsRequest,
    EmbedRequest,
    EnrichRequest,
    TranslateRequest,
)
from xlidx.serve.service import NotServed, Service, parse_target

log = logging.getLogger("xlidx.serve")


class TooLarge(Exception):
    pass


def status_of(exc: BaseException) -> int:
    """The HTTP status an error is answered with (see the module docs)."""
    for kind, status in (
        (TooLarge, 413), (Overloaded, 429), (NotServed, 404),
        (IndexNotFound, 404), (MappingError, 409), (ConfigError, 400), (ModelError, 400),
    ):  # fmt: skip
        if isinstance(exc, kind):
            return status
    if isinstance(exc, BackendError):
        return 503 if exc.transient else 502
    return 500


def error_response(path: str, status: int, message: str, **headers: str) -> JSONResponse:
    message = " ".join(message.split())  # one line
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "code": status}}
    else:
        body = {"error": message}
    return JSONResponse(body, status_code=status, headers=headers or None)


def check_size(texts: Sequence[str], max_items: int, max_chars: int) -> None:
    if len(texts) > max_items:
        raise TooLarge(f"{len(texts)} texts in one request: at most {max_items}")
    chars = sum(len(t) for t in texts)
    if chars > max_chars:
        raise TooLarge(f"{chars} characters in one request: at most {max_chars}")


def texts_of(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def build_app(service: Service, metrics: Metrics) -> FastAPI:
    """The ASGI app over ``service``; its lifespan warms the models up in the background
    (``/health`` is 503 until they are loaded) and drains the queues at shutdown."""
    settings = service.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        warm = loop.run_in_executor(service.model_thread, service.warm_up)
        yield
        await warm
        await service.close()

    app = FastAPI(
        title="xlidx serve", lifespan=lifespan, docs_url=None, redoc_url=None,
        openapi_url=None,
    )  # fmt: skip
    guarded: list[Any] = []  # the key is checked by KeyCheck, before any body is read

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc)
        if status == 500 and not isinstance(exc, XlidxError):
            log.exception("internal error on %s", request.url.path)
            return error_response(request.url.path, 500, f"internal error: {type(exc).__name__}")
        headers: dict[str, str] = {}
        if isinstance(exc, Overloaded):
            headers = {
                "Retry-After": f"{exc.retry_after:g}",
                "x-amzn-ErrorType": "ThrottlingException",
            }
        elif status == 503:
            headers = {"Retry-After": "1"}
        return error_response(request.url.path, status, str(exc), **headers)

    for kind in (XlidxError, TooLarge, Overloaded):
        app.add_exception_handler(kind, on_error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """An unknown route (404) or method (405), in the one-line error shape."""
        return error_response(request.url.path, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(request.url.path, 400, f"invalid JSON: {first.get('msg')}")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return error_response(request.url.path, 422, f"{where}: {first.get('msg', 'invalid')}")

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse(service.health(), status_code=200 if service.status == "ok" else 503)

    @app.get("/metrics", dependencies=guarded)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", dependencies=guarded)
    async def openai_models() -> dict[str, Any]:
        rows = [{"id": m, "object": "model", "created": 0, "owned_by": "xlidx"}
                for m in service.models()]  # fmt: skip
        return {"object": "list", "data": rows}

    @app.post("/v1/embeddings", dependencies=guarded)
    async def openai_embeddings(body: EmbeddingsRequest) -> Response:
        texts = texts_of(body.input)
        check_size(texts, settings.max_items, settings.max_chars)
        target = parse_target(body.model, body.input_type, settings)
        vectors = await service.embed(target, texts)
        if body.dimensions is not None and len(texts) and body.dimensions != vectors.shape[1]:
            raise ConfigError(
                f"dimensions {body.dimensions} asked, but the model gives {vectors.shape[1]}"
            )
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        return _json({
            "object": "list", "data": data, "model": service.model_name(target),
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        })  # fmt: skip

    @app.post("/embed", dependencies=guarded)
    async def tei_embed(body: EmbedRequest) -> Response:
        texts = texts_of(body.inputs)
        check_size(texts, settings.max_items, settings.max_chars)
        target = parse_target(body.model, body.input_type, settings)
        return _json(await service.embed(target, texts))

    @app.post("/translate", dependencies=guarded)
    async def translate(body: TranslateRequest) -> dict[str, Any]:
        texts = texts_of(body.q)
        check_size(texts, settings.max_items, settings.max_chars)
        if body.source != "auto":
            out: list[str] = await service.translate(texts, body.source, body.target)
            return {"translatedText": out[0] if isinstance(body.q, str) else out}
        translated, found = await service.translate_auto(texts, body.target)
        detected = [_detection(d) for d in found]
        if isinstance(body.q, str):
            return {"translatedText": translated[0], "detectedLanguage": detected[0]}
        return {"translatedText": translated, "detectedLanguage": detected}

    @app.post("/detect", dependencies=guarded)
    async def detect(body: DetectRequest) -> list[Any]:
        texts = texts_of(body.q)
        check_size(texts, settings.max_items, settings.max_chars)
        found = [[_detection(d)] for d in await service.detect(texts)]
        return found[0] if isinstance(body.q, str) else found

    @app.get("/languages", dependencies=guarded)
    async def languages() -> list[dict[str, Any]]:
        return await service.languages()

    @app.get("/indices", dependencies=guarded)
    async def indices() -> Response:
        return _json(await service.indices())

    @app.get("/indices/{name}", dependencies=guarded)
    async def index_status(name: str) -> Response:
        return _json(await service.index_status(name))

    @app.post("/indices/{name}/search", dependencies=guarded)
    async def search(name: str, options: QueryOptions) -> Response:
        return _json(await service.search(name, options))

    @app.post("/indices/{name}/enrich", dependencies=guarded)
    async def enrich(name: str, body: EnrichRequest) -> Response:
        if len(body.documents) > settings.max_items:
            raise TooLarge(f"{len(body.documents)} documents in one request: at most "
                           f"{settings.max_items}")  # fmt: skip
        docs = [(d.id, d.source) for d in body.documents]
        return _json({"documents": await service.enrich(name, docs)})

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(KeyCheck, keys=settings.api_keys)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _encoded(vector: np.ndarray, encoding: str) -> np.ndarray | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector


def _json(body: Any) -> Response:
    """A JSON answer, vectors (numpy) included, written by orjson: several times faster than
    the default encoder on a batch of float vectors."""
    return Response(orjson.dumps(body, default=str, option=orjson.OPT_SERIALIZE_NUMPY),
                    media_type="application/json")  # fmt: skip


def _detection(d: Any) -> dict[str, Any]:
    """LibreTranslate's detection: a language and a confidence from 0 to 100."""
    return {"language": d.lang, "confidence": round(100 * float(d.confidence), 1)}


class KeyCheck:
    """401 unless the request carries ``Authorization: Bearer <one of keys>`` (every route
    but ``/health``), decided from the headers alone: no body of a request without a key is
    read. Every key is compared, in constant time."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope.get("path") == "/health":
            await self.app(scope, receive, send)
            return
        auth = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(token.strip(), key)
        if scheme.lower() != b"bearer" or not ok:
            message = "missing or wrong API key: send Authorization: Bearer <key>"
            await error_response(str(scope.get("path", "")), 401, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a request body over ``max_bytes``, by its Content-Length or as it streams: the
    body is read here (up to the limit) before the route sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))

        def too_large() -> JSONResponse:  # made only for a body over the limit
            return error_response(path, 413, f"request body over {self.max_bytes} bytes")

        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await too_large()(scope, receive, send)
            return
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await too_large()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
