"""``xlidx ingest``: documents in, a searchable cross-lingual index out.

Exit codes: 0 every record was indexed or unchanged; 2 some records were dead-lettered (the
rest were indexed); 1 a fatal error (one line on stderr); 130 stopped by SIGINT (Ctrl-C), 143
by SIGTERM, after a summary and the command that resumes.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from xlidx.cli._state import err, out, state
from xlidx.cli.ingest_queue import EXIT_DEAD_LETTERS
from xlidx.cli.options import (
    DEFAULT_TEXT_FIELDS_TEXT,
    LanguagesOpt,
    ModelOpt,
    TextFieldsOpt,
    TranslateOpt,
    VectorIndexOpt,
    split_csv,
)
from xlidx.config import format_duration
from xlidx.documents import DEFAULT_MAX_DOC_BYTES
from xlidx.errors import ConfigError, Interrupted

if TYPE_CHECKING:
    from xlidx.cli._state import CliState
    from xlidx.pipeline.options import IngestOptions
    from xlidx.pipeline.summary import IngestSummary
    from xlidx.workflows import Index
    from xlidx.workflows.ingest import StopRequest
    from xlidx.workflows.inputs import Source


def ingest_command(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(
            help="A .jsonl/.csv file, a directory of .txt/.md files, or - for stdin (JSONL).",
            show_default=False,
        ),
    ] = None,
    index: Annotated[str, typer.Option("--index", help="The xlidx index (an alias).")] = "",
    from_index: Annotated[
        str | None,
        typer.Option(
            "--from-index",
            help="Read the documents of this existing index instead.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="jsonl, csv or dir (default: from the name).", show_default=False
        ),
    ] = None,
    translate_to: TranslateOpt = None,
    model: ModelOpt = None,
    device: Annotated[
        str,
        typer.Option(
            help="cuda, mps, cpu, or auto (cuda, then mps, then cpu). With --queue the "
            "workers' own --device applies."
        ),
    ] = "auto",
    languages: LanguagesOpt = None,
    text_fields: TextFieldsOpt = DEFAULT_TEXT_FIELDS_TEXT,
    batch_size: Annotated[int, typer.Option(help="Documents per batch.", min=1, max=10_000)] = 64,
    max_doc_bytes: Annotated[
        int, typer.Option(help="Larger documents are dead-lettered.", min=1)
    ] = DEFAULT_MAX_DOC_BYTES,
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            "--dead-letter",
            help="JSONL file for records that could not be indexed "
            "(default: ./xlidx-deadletters-INDEX.jsonl, written only when needed).",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="kNN engine for a new index: lucene, faiss or nmslib (OpenSearch); "
            "Elasticsearch has lucene only."
        ),
    ] = "lucene",
    space: Annotated[
        str, typer.Option(help="Vector space for a new index: cosinesimil, innerproduct, l2.")
    ] = "cosinesimil",
    vector_index: VectorIndexOpt = "hnsw",
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="Send batches to the Celery workers ($XLIDX_BROKER_URL) instead of processing "
            "them here; dead letters go to the job store (`xlidx deadletters`).",
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="With --queue: follow the job until every batch is written."),
    ] = False,
    retry_for: Annotated[
        str | None,
        typer.Option(
            "--retry-for",
            help="How long to wait out a cluster that cannot take requests (refused "
            "connections, 429/502/503/504, cluster blocks), e.g. 90s, 10m, 1h; 0 fails at "
            "once. Default: $XLIDX_RETRY_FOR, else 10m. (Queue workers retry by "
            "XLIDX_TASK_MAX_RETRIES instead.)",
            show_default=False,
        ),
    ] = None,
    from_start: Annotated[
        bool,
        typer.Option(
            "--from-start",
            help="Ignore the checkpoint of an earlier run over the same file: read it all "
            "again (unchanged records are still skipped).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="With --from-index SRC: keep running, and keep the index in step with SRC "
            "(new, changed and deleted documents; the checkpoint and a lock live in the "
            "cluster). With --json, one JSON line per poll. Stop with Ctrl-C or SIGTERM.",
        ),
    ] = False,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            help="With --follow: time between polls once caught up, e.g. 5s, 1m (default 5s).",
            show_default=False,
        ),
    ] = None,
    since_field: Annotated[
        str | None,
        typer.Option(
            "--since-field",
            help="With --follow: track changes by this date or number field of SRC (an update "
            "time) instead of each shard's _seq_no.",
            show_default=False,
        ),
    ] = None,
    reconcile_every: Annotated[
        str | None,
        typer.Option(
            "--reconcile-every",
            help="With --follow: how often, at most, ids are compared to find documents deleted "
            "from SRC (default 60s).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Detect, translate, embed and index documents into an xlidx index (created if missing).

    A JSONL or CSV file is checkpointed as batches are written: run the same command again
    after an interruption and it resumes where it stopped. Ctrl-C or SIGTERM stops cleanly
    (exit 130 or 143, with a summary); a second one abandons the batches in flight.

    With --queue the work runs on `xlidx worker` processes: translate (CPU), embed (GPU) and
    write queues.

    With --from-index SRC --follow it keeps running: what applications write to SRC, update
    and delete there reaches the index within --interval (see docs/operations/follow.md).
    """
    from xlidx.cli.follow import follow_options, run_follow
    from xlidx.workflows import Index
    from xlidx.workflows.inputs import FromIndex

    cli_state = state(ctx)
    options = _options(
        cli_state, index=index, path=path, from_index=from_index, translate_to=translate_to,
        languages=languages, text_fields=text_fields, batch_size=batch_size,
        max_doc_bytes=max_doc_bytes, vector=(engine, space, vector_index), queue=queue,
        wait=wait, dead_letter=dead_letter, retry_for=retry_for, from_start=from_start,
    )  # fmt: skip
    following = follow_options(
        follow=follow, from_index=from_index, queue=queue, interval=interval,
        since_field=since_field, reconcile_every=reconcile_every, from_start=from_start,
    )  # fmt: skip
    target = Index(cli_state.backend(), index)
    source = FromIndex(from_index) if from_index is not None else str(path)
    show = not no_progress and not as_json and err.is_terminal
    if following is not None and from_index is not None:
        run_follow(target, from_index, options, following, model=model, device=device,
                   dead_letter=dead_letter, as_json=as_json, show=show)  # fmt: skip
        return
    if queue:
        from xlidx.cli.ingest_queue import run_queued

        run_queued(target, source, options, fmt=fmt, model=model, wait=wait, as_json=as_json,
                   show_progress=show)  # fmt: skip
        return
    summary, interrupted = _run_here(
        target, source, options, fmt=fmt, model=model, device=device, dead_letter=dead_letter,
        show=show,
    )  # fmt: skip
    _report(summary, as_json=as_json)
    if interrupted is not None:
        name = signal.Signals(interrupted.signal_number).name
        hint = _resume_hint(path, summary, checkpointed=summary.checkpointed)
        err.print(f"interrupted by {name}: {hint}")
        raise typer.Exit(interrupted.exit_code)
    if summary.dead_lettered:
        raise typer.Exit(EXIT_DEAD_LETTERS)


def _options(
    cli_state: CliState,
    *,
    index: str,
    path: str | None,
    from_index: str | None,
    translate_to: str | None,
    languages: str | None,
    text_fields: str,
    batch_size: int,
    max_doc_bytes: int,
    vector: tuple[str, str, str],
    queue: bool,
    wait: bool,
    dead_letter: Path | None,
    retry_for: str | None,
    from_start: bool,
) -> IngestOptions:
    """The flags, checked and parsed, as the library's options."""
    from xlidx.config import parse_duration
    from xlidx.pipeline.detect import parse_languages
    from xlidx.pipeline.options import IngestOptions
    from xlidx.spec import VectorSpec, validate_index_name

    if not index:
        raise ConfigError("--index NAME is required")
    validate_index_name(index)
    if (path is None) == (from_index is None):
        raise ConfigError("give exactly one input: a PATH (or - for stdin), or --from-index INDEX")
    targets = parse_languages(split_csv(translate_to)) if translate_to else ()
    if translate_to and not targets:
        raise ConfigError("--translate-to takes language codes, not 'all'")
    # () = every language lingua knows; None: what an existing index was built with, else all
    langs = parse_languages(split_csv(languages)) if languages is not None else None
    fields = split_csv(text_fields)
    if not fields:
        raise ConfigError("--text-fields is empty")
    engine, space, vector_index = vector
    knn = VectorSpec(knn_engine=engine, space_type=space, index_type=vector_index)
    if wait and not queue:
        raise ConfigError("--wait only applies with --queue")
    if queue and dead_letter is not None:
        raise ConfigError(
            "--dead-letter does not apply with --queue: dead letters of queued jobs are kept "
            "by the job store (see `xlidx deadletters list`)"
        )
    return IngestOptions(
        index=index,
        text_fields=fields,
        languages=langs,
        translate_to=targets,
        batch_size=batch_size,
        max_doc_bytes=max_doc_bytes,
        vector=knn,
        retry_for=(
            parse_duration("--retry-for", retry_for)
            if retry_for is not None
            else cli_state.connection().retry_for
        ),
        from_start=from_start,
    )


def _run_here(
    target: Index,
    source: Source,
    options: IngestOptions,
    *,
    fmt: str | None,
    model: str | None,
    device: str,
    dead_letter: Path | None,
    show: bool,
) -> tuple[IngestSummary, Interrupted | None]:
    """Ingest in this process under a progress bar; SIGINT and SIGTERM stop it cleanly."""
    from xlidx.workflows.ingest import StopRequest

    stop = StopRequest()
    with _progress_bar(show) as bar, _stop_on_signals(stop):
        watch = _Watch(bar, show=show, retry_for=options.retry_for or 0.0)
        try:
            summary = target.ingest(
                source, options, fmt=fmt, model=model, device=device, dead_letters=dead_letter,
                progress=watch.progress, on_wait=watch.on_wait, stop=stop,
            )  # fmt: skip
        except Interrupted as exc:
            return exc.summary, exc
    return summary, None


def _progress_bar(show: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[stage]:<11}"),
        TextColumn("{task.completed:>8,.0f} docs"),
        TextColumn("{task.fields[rate]:>9} docs/s"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=True,
    )


class _Watch:
    """The progress bar's stage, count and rate; a cluster outage being waited out."""

    def __init__(self, bar: Progress, *, show: bool, retry_for: float) -> None:
        self.bar, self.show, self.retry_for = bar, show, retry_for
        self.task = bar.add_task("ingest", total=None, stage="starting", rate="-")
        self.waiting: list[float] = []  # while waiting for the cluster: for how long

    def progress(self, stage: str, n: int) -> None:
        self.bar.update(self.task, advance=n)
        if not self.waiting:
            self.bar.update(self.task, stage=stage)
        t = self.bar.tasks[self.task]
        if t.elapsed:
            self.bar.update(self.task, rate=f"{t.completed / t.elapsed:,.1f}")

    def on_wait(self, seconds: float | None) -> None:
        if seconds is None:
            if self.waiting and not self.show:
                err.print(f"the cluster is back after {self.waiting[0]:.0f}s")
            self.waiting.clear()
            return
        if not self.waiting:
            self.waiting.append(seconds)
            if not self.show:
                err.print(
                    "the cluster cannot take requests; waiting up to "
                    f"{format_duration(self.retry_for)} (--retry-for)"
                )
        self.waiting[0] = seconds
        self.bar.update(self.task, stage=f"waiting for the cluster ({seconds:.0f} s)")


def _report(summary: IngestSummary, *, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(summary.to_json()))
    else:
        rate = summary.read / summary.seconds if summary.seconds else 0.0
        stopped = "interrupted: " if summary.interrupted else ""
        out.print(
            f"{stopped}read {summary.read}, indexed {summary.indexed}, "
            f"unchanged {summary.unchanged}, dead-lettered {summary.dead_lettered} in "
            f"{summary.seconds:.1f}s ({rate:,.1f} docs/s) into {summary.index}"
        )
        if summary.resumed_after is not None:
            out.print(
                f"resumed after line {summary.resumed_line} ({summary.resumed_after:,} "
                "record(s) done by an earlier run)"
            )
        if summary.languages:
            langs_text = ", ".join(f"{k} {v}" for k, v in summary.languages.most_common())
            out.print(f"languages: {langs_text}")
        cal = summary.calibration
        if cal:
            state = "on" if cal["centering"] else "off"
            out.print(
                f"calibrated: means for {', '.join(cal['added']) or 'no new language'}; "
                f"centering {state}; moved the vectors of {cal['rewritten']} document(s)"
            )
    if summary.calibration_error:
        err.print(
            f"warning: calibration failed ({summary.calibration_error}); the documents are "
            "indexed, `xlidx index calibrate` tries again"
        )
    if summary.checkpoint_note:
        err.print(f"note: {summary.checkpoint_note}")
    for pair, n in sorted(summary.untranslated.items()):
        err.print(f"warning: no translation package for {pair}; {n} document(s) indexed without it")
    if summary.dead_lettered:
        err.print(f"{summary.dead_lettered} record(s) dead-lettered to {summary.dead_letter_file}")


def _resume_hint(path: str | None, summary: IngestSummary, *, checkpointed: bool) -> str:
    """What to run to finish the job."""
    again = shlex.join(["xlidx", *sys.argv[1:]])
    if checkpointed:
        return f"{summary.read} record(s) done; `{again}` resumes where this run stopped"
    same = " with the same input" if path == "-" else ""
    return (
        f"{summary.read} record(s) done; run `{again}` again{same}: records already indexed "
        "are skipped"
    )


@contextmanager
def _stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """SIGINT and SIGTERM ask ``stop`` to stop; a second one abandons the work in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set(signum)
        err.print(
            f"{signal.Signals(signum).name}: stopping after the batches in flight are written "
            "(again to abandon them)"
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
