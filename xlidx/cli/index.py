"""``xlidx index``: create, inspect, migrate, roll back, prune and delete versioned indices.

Each command parses its flags, calls :class:`~xlidx.workflows.Index` and renders the result.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from xlidx.cli._state import err, out
from xlidx.cli.cluster import connect
from xlidx.cli.options import (
    DEFAULT_TEXT_FIELDS_TEXT,
    CenteringOpt,
    DeviceOpt,
    JsonOpt,
    LanguagesOpt,
    ModelOpt,
    ReplicasOpt,
    ShardsOpt,
    TextFieldsOpt,
    TranslateOpt,
    VectorIndexOpt,
    split_csv,
)
from xlidx.errors import ConfigError
from xlidx.pipeline.calibration import MIN_DOCS, SAMPLE_DOCS

if TYPE_CHECKING:
    from xlidx.eval.gate import Gate
    from xlidx.workflows import Index
    from xlidx.workflows.lifecycle import IndexStatus
    from xlidx.workflows.migrate import Migration

app = typer.Typer(help="Manage xlidx indices (versioned, behind aliases).", no_args_is_help=True)
UND_WARN_SHARE = 0.1  # `index status` warns when this share of documents is `und`
NameArg = Annotated[str, typer.Argument(help="Index name (the alias).")]


def _index(ctx: typer.Context, name: str) -> Index:
    return connect(ctx).index(name)


@app.command("list")
def list_indices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the cluster's indices with their aliases and document counts."""
    rows = connect(ctx).indices()
    if as_json:
        out.print_json(json.dumps([r.to_json() for r in rows]))
        return
    table = Table("index", "aliases", "health", "docs", "size")
    for r in rows:
        table.add_row(r.index, ", ".join(r.aliases), r.health, str(r.docs), r.size)
    out.print(table)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Index name (the alias; data goes to NAME-v1).")],
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    languages: LanguagesOpt = None,
    translate_to: TranslateOpt = None,
    text_fields: TextFieldsOpt = DEFAULT_TEXT_FIELDS_TEXT,
    engine: Annotated[
        str,
        typer.Option(help="kNN engine: lucene (dev node), faiss or nmslib (OpenSearch only)."),
    ] = "lucene",
    space: Annotated[str, typer.Option(help="cosinesimil, innerproduct or l2.")] = "cosinesimil",
    vector_index: VectorIndexOpt = "hnsw",
    shards: ShardsOpt = None,
    replicas: ReplicasOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create NAME-v1 behind the alias NAME (does nothing if NAME exists)."""
    from xlidx.spec import VectorSpec, check_shards, validate_index_name

    validate_index_name(name)
    check_shards(shards, replicas)
    vector = VectorSpec(knn_engine=engine, space_type=space, index_type=vector_index)
    done = _index(ctx, name).create(
        model=model, device=device, languages=split_csv(languages),
        translate_to=split_csv(translate_to), text_fields=split_csv(text_fields),
        vector=vector, shards=shards, replicas=replicas,
    )  # fmt: skip
    if as_json:
        out.print_json(json.dumps(done.to_json()))
    else:
        out.print(f"{'created' if done.created else 'exists:'} {done.index} behind alias {name}")


@app.command()
def status(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Version, documents, model, languages and their analyzers of an xlidx index."""
    report = _index(ctx, name).status()
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    _print_status(report)
    und = float(report.und_share or 0.0)
    if und >= UND_WARN_SHARE:
        err.print(
            f"warning: {und:.0%} of the documents have no detected language (und): they are "
            "not translated and BM25 matches them only in their original fields"
        )


def _print_status(r: IndexStatus) -> None:
    langs = ", ".join(f"{k} {v}" for k, v in sorted(r.languages.items(), key=lambda kv: -kv[1]))
    vector = r.vector
    out.print(f"index:      {r.name} -> {r.index} (version {r.version})")
    out.print(f"versions:   {', '.join(r.versions)}")
    out.print(f"documents:  {r.documents}")
    out.print(f"languages:  {langs or '-'}")
    out.print(f"model:      {r.model} ({r.dimension}-d, {r.backend})")
    out.print(
        f"vectors:    {vector.get('engine')} {vector.get('index_type', vector.get('method'))} "
        f"{vector.get('space_type')} on {r.engine or 'opensearch'}"
    )
    out.print(f"translate:  {', '.join(r.translate_to) or '-'}")
    cal = r.calibration
    out.print(
        f"centering:  {calibration_line(cal)}; made {cal.get('made_at')}"
        if cal
        else "centering:  not calibrated yet (a language needs "
        f"{MIN_DOCS} documents; `xlidx index calibrate {r.name}`)"
    )
    for warning in (cal or {}).get("warnings") or ():
        out.print(f"warning:    {warning}", markup=False)
    analyzers = r.analyzers or {}
    if analyzers:
        out.print("analyzers:  " + ", ".join(f"{lang} {a}" for lang, a in analyzers.items()))
    by_stand_in: dict[str, list[str]] = {}
    for lang, wanted in sorted((r.analyzer_fallbacks or {}).items()):
        by_stand_in.setdefault(analyzers.get(lang, "standard"), []).append(f"{lang} ({wanted})")
    for stand_in, missing in by_stand_in.items():
        out.print(
            f"            {stand_in} for {', '.join(missing)}: the cluster lacks these "
            "language analyzers"
        )


@app.command()
def migrate(
    ctx: typer.Context,
    name: NameArg,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Re-embed every document with this model.", show_default=False
        ),
    ] = None,
    device: DeviceOpt = "auto",
    engine: Annotated[str | None, typer.Option(help="New kNN engine.", show_default=False)] = None,
    space: Annotated[str | None, typer.Option(help="New vector space.", show_default=False)] = None,
    vector_index: Annotated[
        str | None,
        typer.Option(
            "--vector-index",
            help="New vector index type (Elasticsearch: hnsw, int8_hnsw, bbq_hnsw).",
            show_default=False,
        ),
    ] = None,
    redetect: Annotated[
        bool,
        typer.Option(
            "--redetect",
            help="Detect every document's language again (every language, or --languages) "
            "and rebuild its language fields; vectors are kept, and translations are made "
            "again where a language changed.",
        ),
    ] = False,
    languages: Annotated[
        str | None,
        typer.Option(
            help="With --redetect: the languages to detect among (ISO 639-1 codes, or all). "
            "Default: all.",
            show_default=False,
        ),
    ] = None,
    gate: Annotated[
        Path | None,
        typer.Option(
            "--gate",
            help="Queries (TSV or JSONL, as for `xlidx eval`): evaluate both versions with them "
            "and move the alias only if the new one is no worse than --max-drop.",
            show_default=False,
        ),
    ] = None,
    qrels: Annotated[
        Path | None,
        typer.Option("--qrels", help="With --gate: TREC qrels.", show_default=False),
    ] = None,
    metric: Annotated[str, typer.Option(help="With --gate: the measure that decides.")] = (
        "nDCG@10"
    ),
    max_drop: Annotated[
        float,
        typer.Option(
            "--max-drop", help="With --gate: the largest accepted drop of --metric.", min=0
        ),
    ] = 0.01,
    gate_mode: Annotated[
        str, typer.Option("--gate-mode", help="With --gate: hybrid, bm25 or knn.")
    ] = "hybrid",
    report_path: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="With --gate: the HTML report of both versions "
            "(default ./xlidx-gate-NEW-VERSION.html).",
            show_default=False,
        ),
    ] = None,
    shards: ShardsOpt = None,
    replicas: ReplicasOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the next version (new mapping, model or language labels), then move the alias.

    The new version keeps the current one's primary shards and replicas unless --shards /
    --replicas say otherwise.

    The old version is kept for rollback; the alias moves only when every document arrived,
    and, with --gate, only when the new version is no worse on your judgments (exit 3 and the
    alias untouched otherwise; the new version is kept for inspection).
    """
    from xlidx.spec import check_shards
    from xlidx.workflows.migrate import GateRefused

    check_shards(shards, replicas)
    checked = _gate(gate, qrels, metric, max_drop, gate_mode, device, report_path)
    on_step: Callable[[str], None] | None = None if as_json else err.print
    try:
        done = _index(ctx, name).migrate(
            model=model, device=device, knn_engine=engine, space=space,
            vector_index=vector_index, gate=checked, report=report_path, redetect=redetect,
            languages=None if languages is None else split_csv(languages), shards=shards,
            replicas=replicas, on_step=on_step,
        )  # fmt: skip
    except GateRefused as refused:  # exit 3, after the decision's JSON
        _report_migration(refused.migration, as_json=as_json)
        raise
    _report_migration(done, as_json=as_json)
    if not as_json:
        _print_migration(done)


def _gate(
    queries: Path | None,
    qrels: Path | None,
    metric: str,
    max_drop: float,
    mode: str,
    device: str,
    report: Path | None,
) -> Gate | None:
    """The checked gate (read before anything is migrated), or None without --gate."""
    if queries is None:
        if qrels is not None or report is not None:
            raise ConfigError("--qrels and --report apply with --gate QUERIES")
        return None
    if qrels is None:
        raise ConfigError("--gate needs --qrels FILE (the relevance judgments)")
    from xlidx.eval.gate import Gate

    return Gate.from_files(queries, qrels, metric, max_drop, mode, device)


def _report_migration(done: Migration, *, as_json: bool) -> None:
    for warning in done.warnings:  # the decision stands without its page
        err.print(f"warning: {warning}")
    if as_json:
        out.print_json(json.dumps(done.to_json()))


def _print_migration(done: Migration) -> None:
    if done.calibration is not None:
        _print_calibration(done.calibration.to_json())
    if done.gate is not None:
        out.print(f"gate passed: {done.gate.reason()}; report: {done.report}")
    out.print(
        f"migrated {done.documents} documents: {done.from_index} -> {done.to_index}; "
        f"alias {done.name} now points at {done.to_index} ({done.from_index} kept for rollback)"
    )
    r = done.redetect
    if r is not None:
        after = ", ".join(f"{k} {v}" for k, v in r.languages_after.most_common())
        out.print(
            f"relabelled {r.relabelled} of {r.documents} documents; languages now: {after}; "
            f"translated again: {r.retranslated} field(s), translations dropped (no package): "
            f"{r.translations_dropped}"
        )


@app.command()
def calibrate(
    ctx: typer.Context,
    name: NameArg,
    centering: CenteringOpt = None,
    min_docs: Annotated[
        int | None,
        typer.Option(
            "--min-docs",
            help=f"Documents a language needs for means of its own [default: {MIN_DOCS}].",
            min=2,
            show_default=False,
        ),
    ] = None,
    sample_docs: Annotated[
        int | None,
        typer.Option(
            "--sample",
            help=f"Documents read per language [default: {SAMPLE_DOCS}].",
            min=2,
            max=10_000,
            show_default=False,
        ),
    ] = None,
    device: DeviceOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Re-estimate the per-language means of NAME's vectors from its documents, decide
    whether to center them (measured), and move the stored vectors to the new means.

    No document is re-embedded: each centered passage stores what undoes its centering.
    """
    from xlidx.pipeline.calibration import check_mode

    if centering is not None:
        check_mode(centering)
    index = _index(ctx, name)
    with _progress_bar(show=not as_json) as progress:
        done = index.calibrate(
            centering=centering, min_docs=min_docs, sample_docs=sample_docs, device=device,
            progress=progress,
        )  # fmt: skip
    if as_json:
        out.print_json(json.dumps(done.to_json()))
        return
    _print_calibration(done.to_json())
    out.print(f"moved the vectors of {done.rewritten} document(s) in {done.seconds:.1f}s")


def calibration_line(cal: dict[str, Any]) -> str:
    """One line on a calibration (``Calibrated.to_json`` or ``_meta``'s summary)."""
    langs = ", ".join(f"{k} {v['docs']}" for k, v in sorted(cal.get("languages", {}).items()))
    state = "on" if cal.get("centering") else "off"
    return f"centering {state} ({cal.get('mode')}): {cal.get('reason')}; means: {langs or '-'}"


def _print_calibration(cal: dict[str, Any]) -> None:
    """A calibration's line, then one line per warning it gave about its own samples."""
    out.print(calibration_line(cal))
    for warning in cal.get("warnings") or ():
        out.print(f"warning: {warning}", markup=False)


@contextmanager
def _progress_bar(*, show: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A calibration's ``progress(stage, done, total)``, as a bar on a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.fields[stage]:<15}"),
        BarColumn(),
        TextColumn("{task.completed:>6,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        console=err,
        disable=not (show and err.is_terminal),
        transient=True,
    ) as bar:
        task = bar.add_task("calibrate", total=1, stage="calibrating")

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(1, total), stage=stage)

        yield progress


@app.command()
def rollback(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Point NAME back at its previous version (the one `migrate` kept)."""
    done = _index(ctx, name).rollback()
    if as_json:
        out.print_json(json.dumps(done.to_json()))
    else:
        out.print(f"alias {name} now points at {done.to_index} (was {done.from_index})")


@app.command()
def prune(
    ctx: typer.Context,
    name: NameArg,
    keep: Annotated[
        int,
        typer.Option(help="Versions to keep, counting the current one (always kept)."),
    ] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Delete old versions of NAME, keeping the current one and the newest others."""
    done = _index(ctx, name).prune(keep)
    if as_json:
        out.print_json(json.dumps(done.to_json()))
    elif done.deleted:
        out.print(f"deleted {', '.join(done.deleted)}; kept {', '.join(done.kept)}")
    else:
        out.print(f"nothing to prune; kept {', '.join(done.kept)}")


@app.command()
def delete(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete the alias NAME and every version behind it (asks first on a terminal)."""
    from xlidx.spec import validate_index_name

    validate_index_name(name)
    index = _index(ctx, name)
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"refusing to delete {name} without a terminal to confirm: pass --yes"
            )
        listed = ", ".join(index.versions()) or "no versions"
        if not typer.confirm(f"delete {name} and {listed}?", default=False, err=True):
            err.print("not deleted")
            raise typer.Exit(1)
    done = index.delete()
    if as_json:
        out.print_json(json.dumps(done.to_json()))
    else:
        out.print(f"deleted {name}: {', '.join(done.deleted)}")
