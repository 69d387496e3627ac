"""``xlidx serve``: the warm HTTP service (:mod:`xlidx.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xlidx.cli._state import err
from xlidx.cli.cluster import connect
from xlidx.cli.options import DeviceOpt


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind (loopback by default; another prints a "
            "warning unless API keys are set)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="An embedding model to serve (a path or a hub name; default "
            "$XLIDX_EMBED_MODEL); clients name it by its folder name. Every index's model is "
            "served too, as xlidx/<index>:passage or :query.",
            show_default=False,
        ),
    ] = None,
    index: Annotated[
        list[str] | None,
        typer.Option(
            "--index",
            help="An index whose model and calibration to load at start (repeat); others "
            "load on first use.",
            show_default=False,
        ),
    ] = None,
    device: DeviceOpt = "auto",
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            help="A bearer key clients must send (repeat for several; also "
            "$XLIDX_SERVE_API_KEYS, comma-separated). Without one, anyone who can reach the "
            "port can use the service.",
            show_default=False,
        ),
    ] = None,
    max_batch: Annotated[
        int,
        typer.Option(
            help="Texts per model call, at most (the model sorts them by length and runs them "
            "in sub-batches of 32: under load, bigger calls pad less).",
            min=1,
        ),
    ] = 128,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            help="How long a batch that is not full waits for more texts before the model runs "
            "it (0: it runs at once; texts that arrive while the model is busy form the next).",
            min=0,
        ),
    ] = 0.0,
    max_queued: Annotated[
        int, typer.Option(help="Texts that may wait per queue; more are answered 429.", min=1)
    ] = 4096,
    max_items: Annotated[
        int, typer.Option(help="Texts in one request; more are answered 413.", min=1)
    ] = 2048,
    max_chars: Annotated[
        int, typer.Option(help="Characters in one request; more are answered 413.", min=1)
    ] = 2_000_000,
    max_body_bytes: Annotated[
        int, typer.Option(help="Bytes in one request body; more are answered 413.", min=1)
    ] = 16 * 1024 * 1024,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM): serve HTTPS.", show_default=False)
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="TLS private key (PEM).", show_default=False)
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log each request's method, path and status (never its text).")
    ] = True,
) -> None:
    """Serve embeddings (OpenAI /v1/embeddings, TEI /embed), translation and language
    detection (LibreTranslate /translate, /detect, /languages) and search
    (/indices/{name}/search) over HTTP, with the models kept warm. GET /health is 503 until
    they are loaded; SIGTERM answers the requests in flight, then exits 0.
    """
    from xlidx.config import env_embed_model, serve_api_keys
    from xlidx.serve.server import serve, warnings
    from xlidx.serve.settings import ServeSettings

    settings = ServeSettings(
        host=host, port=port, model=model or env_embed_model(), indices=tuple(index or ()),
        device=device, api_keys=(*(api_key or ()), *serve_api_keys()), max_batch=max_batch,
        max_wait_ms=max_wait_ms, max_queued=max_queued, max_items=max_items,
        max_chars=max_chars, max_body_bytes=max_body_bytes, ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )  # fmt: skip
    for line in warnings(settings):
        err.print(f"warning: {line}", markup=False)
    cluster = connect(ctx)
    if settings.model:
        cluster.embedder(settings.model, settings.device)  # a bad path fails here, in one line
    for name in settings.indices:
        cluster.index(name).status()  # a missing index fails here too
    serve(
        settings, cluster, access_log=access_log,
        on_ready=lambda url: err.print(f"xlidx serve: listening on {url}", markup=False),
    )  # fmt: skip
