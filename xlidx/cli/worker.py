"""``xlidx worker``: a Celery worker for some of the translate, embed and write queues
(:func:`workers.run.run_worker`, which gives the defaults per queue set)."""

from __future__ import annotations

from typing import Annotated

import typer

from xlidx.cli._state import err, state
from xlidx.jobs.settings import QUEUES


def worker_command(
    ctx: typer.Context,
    queues: Annotated[
        str, typer.Option("--queues", "-Q", help="Comma-separated queues to consume.")
    ] = ",".join(QUEUES),
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Worker processes (default: 1 with embed, else CPU cores for translate, "
            "4 for write).",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="Device for models: auto, cpu, cuda or mps.")
    ] = "auto",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Embedding model to preload (default $XLIDX_EMBED_MODEL); a job naming "
            "another model loads it on first use.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Worker name (default xlidx-QUEUES-PID@HOST).", show_default=False),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
) -> None:
    """Run a Celery worker for the translate (CPU), embed (GPU) and write (I/O) queues."""
    from workers.run import parse_queues, run_worker

    run_worker(
        connection=state(ctx).connection(),
        queues=parse_queues(queues),
        concurrency=concurrency,
        device=device,
        model=model,
        name=name,
        loglevel=loglevel,
        announce=lambda line: err.print(line, markup=False),
    )
