"""``xlidx enrich NAME --pending``: complete, in place, the documents an index's ingest
pipeline (``xlidx connect``) left ``xlidx.pending`` while the service was down."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from xlidx.cli._state import err, state
from xlidx.cli.ingest import _report, _run_here
from xlidx.cli.ingest_queue import EXIT_DEAD_LETTERS
from xlidx.cli.options import ModelOpt
from xlidx.errors import ConfigError


def enrich_command(
    ctx: typer.Context,
    index: Annotated[str, typer.Argument(help="The xlidx index (alias).", show_default=False)],
    pending_only: Annotated[
        bool,
        typer.Option(
            "--pending",
            help="The documents marked xlidx.pending (required: the only selection so far).",
        ),
    ] = False,
    model: ModelOpt = None,
    device: Annotated[str, typer.Option(help="cuda, mps, cpu, or auto.")] = "auto",
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            "--dead-letter",
            help="JSONL file for documents that still cannot be enriched (default: "
            "./xlidx-deadletters-INDEX.jsonl, written only when needed).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Enrich, in place, the documents of an index that applications wrote while `xlidx
    serve` could not take them (marked xlidx.pending by the pipeline of `xlidx connect`).

    Each is detected, translated, embedded and written again exactly as `xlidx ingest`
    writes it, without the mark; a document that still fails is dead-lettered (exit 2) and
    stays pending. Ctrl-C or SIGTERM stops cleanly; run it again to finish.
    """
    from xlidx.workflows import Index
    from xlidx.workflows.enrich import pending, pending_options

    if not pending_only:
        raise ConfigError("say which documents to enrich: --pending")
    target = Index(state(ctx).backend(), index)
    options = pending_options(target)
    show = not no_progress and not as_json and err.is_terminal
    summary, interrupted = _run_here(
        target, pending(target), options, fmt=None, model=model, device=device,
        dead_letter=dead_letter, show=show,
    )  # fmt: skip
    _report(summary, as_json=as_json)
    if interrupted is not None:
        name = signal.Signals(interrupted.signal_number).name
        err.print(f"interrupted by {name}: run the same command again to finish")
        raise typer.Exit(interrupted.exit_code)
    if summary.dead_lettered:
        raise typer.Exit(EXIT_DEAD_LETTERS)
