"""``xlidx index``: create, inspect, migrate, roll back, prune and delete versioned indices."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xlidx.cli._state import err, out, state
from xlidx.cli.ingest import (
    DEFAULT_TEXT_FIELDS_TEXT,
    DeviceOpt,
    LanguagesOpt,
    ModelOpt,
    TextFieldsOpt,
    TranslateOpt,
    VectorIndexOpt,
    resolve_model,
    split_csv,
)
from xlidx.documents import DEFAULT_TEXT_FIELDS
from xlidx.errors import ConfigError, MappingError
from xlidx.indices.calibration import MIN_DOCS, SAMPLE_DOCS

app = typer.Typer(help="Manage xlidx indices (versioned, behind aliases).", no_args_is_help=True)
UND_WARN_SHARE = 0.1  # `index status` warns when this share of documents is `und`
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ShardsOpt = Annotated[
    int | None,
    typer.Option(
        "--shards",
        help="Primary shards of the new version (create: 1; migrate: the current version's).",
        show_default=False,
    ),
]
ReplicasOpt = Annotated[
    int | None,
    typer.Option(
        "--replicas",
        help="Replicas of each shard of the new version (create: 0; migrate: the current "
        "version's).",
        show_default=False,
    ),
]


@app.command("list")
def list_indices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the cluster's indices with their aliases and document counts."""
    backend = state(ctx).backend()
    rows = backend.cat_indices()
    aliases = backend.cat_aliases()
    by_index: dict[str, list[str]] = {}
    for a in aliases:
        by_index.setdefault(a["index"], []).append(a["alias"])
    visible = sorted((r for r in rows if not r["index"].startswith(".")), key=lambda r: r["index"])
    result = [
        {
            "index": r["index"],
            "aliases": sorted(by_index.get(r["index"], [])),
            "health": r.get("health"),
            "docs": int(r["docs.count"]) if r.get("docs.count") not in (None, "") else None,
            "size": r.get("store.size"),
        }
        for r in visible
    ]
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = Table("index", "aliases", "health", "docs", "size")
    for r in result:
        table.add_row(r["index"], ", ".join(r["aliases"]), r["health"], str(r["docs"]), r["size"])
    out.print(table)


def _spec(
    name: str,
    embedding: dict[str, Any],
    *,
    text_fields: Sequence[str],
    languages: Sequence[str],
    translate_to: Sequence[str],
    vector: Any,
    **more: Any,
) -> Any:
    from xlidx.indices.spec import IndexSpec

    return IndexSpec(
        name=name,
        embedding=embedding,
        text_fields=tuple(text_fields),
        languages=tuple(languages),
        translate_to=tuple(translate_to),
        vector=vector,
        **more,
    )


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
    from xlidx.indices.manage import ensure
    from xlidx.indices.spec import VectorSpec, check_model, check_shards, validate_index_name
    from xlidx.pipeline.detect import parse_languages
    from xlidx.pipeline.embed import load_embedder
    from xlidx.pipeline.fingerprint import model_source

    validate_index_name(name)
    check_shards(shards, replicas)
    targets = parse_languages(split_csv(translate_to)) if translate_to else ()
    langs = parse_languages(split_csv(languages))  # () = every language lingua knows
    vector = VectorSpec(engine=engine, space_type=space, index_type=vector_index)
    backend = state(ctx).backend()
    embedder = load_embedder(resolve_model(model, None), device=device)
    embedding = {**embedder.describe(), "source": model_source(embedder)}
    spec = _spec(
        name,
        embedding,
        text_fields=split_csv(text_fields),
        languages=langs,
        translate_to=targets,
        vector=vector,
        shards=shards,
        replicas=replicas,
    )
    st, created = ensure(backend, spec)
    if not created:
        check_model(st.meta, embedding, name)
    if as_json:
        out.print_json(json.dumps({"name": name, "index": st.index, "created": created}))
    else:
        out.print(f"{'created' if created else 'exists:'} {st.index} behind alias {name}")


@app.command()
def status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Index name (the alias).")],
    as_json: JsonOpt = False,
) -> None:
    """Version, documents, model, languages and their analyzers of an xlidx index."""
    from xlidx.indices.manage import status as index_status

    report = index_status(state(ctx).backend(), name)
    if as_json:
        out.print_json(json.dumps(report))
        return
    langs = ", ".join(
        f"{k} {v}" for k, v in sorted(report["languages"].items(), key=lambda kv: -kv[1])
    )
    vector = report["vector"]
    out.print(f"index:      {report['name']} -> {report['index']} (version {report['version']})")
    out.print(f"versions:   {', '.join(report['versions'])}")
    out.print(f"documents:  {report['documents']}")
    out.print(f"languages:  {langs or '-'}")
    out.print(f"model:      {report['model']} ({report['dimension']}-d, {report['backend']})")
    out.print(
        f"vectors:    {vector.get('engine')} {vector.get('index_type', vector.get('method'))} "
        f"{vector.get('space_type')} on {report.get('engine') or 'opensearch'}"
    )
    out.print(f"translate:  {', '.join(report['translate_to']) or '-'}")
    cal = report.get("calibration")
    out.print(
        f"centering:  {calibration_line(cal)}; made {cal.get('made_at')}"
        if cal
        else "centering:  not calibrated yet (a language needs "
        f"{MIN_DOCS} documents; `xlidx index calibrate {name}`)"
    )
    analyzers = report.get("analyzers") or {}
    if analyzers:
        out.print("analyzers:  " + ", ".join(f"{lang} {a}" for lang, a in analyzers.items()))
    fallbacks = report.get("analyzer_fallbacks") or {}
    by_stand_in: dict[str, list[str]] = {}
    for lang, wanted in sorted(fallbacks.items()):
        stand_in = analyzers.get(lang, "standard")
        by_stand_in.setdefault(stand_in, []).append(f"{lang} ({wanted})")
    for stand_in, missing in by_stand_in.items():
        out.print(
            f"            {stand_in} for {', '.join(missing)}: the cluster lacks these "
            "language analyzers"
        )
    und = float(report.get("und_share") or 0.0)
    if und >= UND_WARN_SHARE:
        err.print(
            f"warning: {und:.0%} of the documents have no detected language (und): they are "
            "not translated and BM25 matches them only in their original fields"
        )


@app.command()
def migrate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Index name (the alias).")],
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
    from xlidx.indices.manage import migrate as do_migrate
    from xlidx.indices.manage import resolve
    from xlidx.indices.spec import VectorSpec, check_shards, shards_of
    from xlidx.pipeline.fingerprint import model_source

    check_shards(shards, replicas)
    gate_spec = _gate_spec(gate, qrels, metric, max_drop, gate_mode, device, report_path)
    backend = state(ctx).backend()
    current = resolve(backend, name)
    if current is None:
        raise MappingError(f"no xlidx index named {name!r} to migrate")
    x = current.xlidx_meta
    embedding = dict(x.get("embedding", {}))
    if languages is not None and not redetect:
        raise ConfigError("--languages applies with --redetect")
    steps: list[Any] = []
    detect_langs = tuple(x.get("languages", []))
    detection = dict(x.get("detection") or {})
    relabel = None
    if redetect:
        from xlidx.indices.redetect import RedetectReport, redetector
        from xlidx.pipeline.detect import Detector, parse_languages

        # every language unless --languages says otherwise: the index's old restriction is
        # usually what mislabelled it
        detect_langs = parse_languages(split_csv(languages)) if languages is not None else ()
        detector = Detector(detect_langs)
        detection = detector.describe()
        translator = None
        if x.get("translate_to"):
            from xlidx.pipeline.translate import Translator
            from xlidx.pipeline.translation_cache import TranslationCache

            translator = Translator(device=device, cache=TranslationCache())
        relabel = RedetectReport()
        steps.append(redetector(x, detector, translator, relabel))
    embedder = None
    if model is not None:
        from xlidx.indices.reembed import reembedder
        from xlidx.pipeline.embed import load_embedder

        embedder = load_embedder(model, device=device)
        embedding = {**embedder.describe(), "source": model_source(embedder)}
        steps.append(reembedder(embedder, x))

    def transform(docs: Any) -> Any:
        for step in steps:
            docs = step(docs)
        return docs

    vector = VectorSpec.from_meta(
        x.get("vector", {}), engine=engine, space_type=space, index_type=vector_index
    )
    old_shards, old_replicas = shards_of(backend.index_settings(current.index))
    spec = _spec(
        name,
        embedding,
        text_fields=x.get("text_fields", DEFAULT_TEXT_FIELDS),
        languages=detect_langs,
        translate_to=x.get("translate_to", []),
        vector=vector,
        detection=detection,
        translation_packages=tuple(x.get("translation_packages", [])),
        shards=shards if shards is not None else old_shards,
        replicas=replicas if replicas is not None else old_replicas,
    )
    if not as_json:
        doing = [w for w, on in (("relabelling", redetect), ("re-embedding", model)) if on]
        err.print(f"… migrating {current.index} ({', '.join(doing) or 'copying'})")
    gated: dict[str, Any] = {}
    calibrated: dict[str, Any] = {}

    def prepare(new: str) -> None:
        from xlidx.indices.calibrate import IndexModel, calibrate
        from xlidx.indices.calibration import from_index_meta
        from xlidx.indices.manage import version_state

        if not as_json:
            err.print(f"… calibrating {new}")
        version = version_state(backend, new)
        old_cal = from_index_meta(x)
        # new vectors or labels: every mean afresh; a plain copy keeps the means it carries
        done = calibrate(
            backend,
            version,
            encoder=IndexModel(version, device=device, embedder=embedder),
            mode=old_cal.mode if old_cal else None,
            full=bool(steps),
        )
        if done is not None:
            calibrated.update(done.to_json())

    def decide(old: str, new: str) -> bool:
        from xlidx.eval.gate import run_gate
        from xlidx.eval.reporting import report_data, write_report

        if not as_json:
            err.print(f"… evaluating {old} and {new} on {len(gate_spec.queries)} queries")
        result, reports = run_gate(backend, gate_spec, old, new)
        data = report_data(
            f"xlidx migrate gate: {name}",
            reports,
            gate_spec.queries,
            gate_spec.qrels,
            settings={
                "index": name, "old version": old, "new version": new,
                "old model": x.get("embedding", {}).get("model"),
                "new model": embedding.get("model"), "mode": gate_spec.mode,
                "metric": gate_spec.metric, "max drop": gate_spec.max_drop,
                "decision": "moved the alias" if result.passed else "refused",
                "reason": result.reason(),
            },
            labels=[f"{gate_spec.mode} · {old}", f"{gate_spec.mode} · {new}"],
            comparison=result.comparison,
            main_metric=gate_spec.metric,
        )  # fmt: skip
        try:
            path: str | None = str(
                write_report(report_path or Path(f"xlidx-gate-{new}.html"), data)
            )
        except ConfigError as exc:  # the decision stands without its page
            err.print(f"warning: {exc}")
            path = None
        gated.update(result.to_json(), report=path)
        return result.passed

    report = do_migrate(
        backend,
        spec,
        transform=transform if steps else None,
        decide=decide if gate_spec is not None else None,
        prepare=prepare,
    )
    if calibrated:
        report["calibration"] = calibrated
    if relabel is not None:
        report["redetect"] = relabel.to_json()
    if gated:
        report["gate"] = gated
    if as_json:
        out.print_json(json.dumps(report))
    if gated and not report["moved"]:
        from xlidx.eval.gate import GateRefused

        raise GateRefused(
            f"migration refused by the gate: {gated['reason']}; the alias {name} still points "
            f"at {report['from']}, {report['to']} is kept for inspection; report: "
            f"{gated['report']}"
        )
    if as_json:
        return
    if calibrated:
        out.print(calibration_line(calibrated))
    if gated:
        out.print(f"gate passed: {gated['reason']}; report: {gated['report']}")
    out.print(
        f"migrated {report['documents']} documents: {report['from']} -> {report['to']}; "
        f"alias {name} now points at {report['to']} ({report['from']} kept for rollback)"
    )
    if relabel is not None:
        r = relabel
        after = ", ".join(f"{k} {v}" for k, v in r.languages_after.most_common())
        out.print(
            f"relabelled {r.relabelled} of {r.documents} documents; languages now: {after}; "
            f"translated again: {r.retranslated} field(s), translations dropped (no package): "
            f"{r.translations_dropped}"
        )


CenteringOpt = Annotated[
    str | None,
    typer.Option(
        "--centering",
        help="auto (on where the language component is strong), on or off; kept for the "
        "index (default: what it has, else auto).",
        show_default=False,
    ),
]


@app.command()
def calibrate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Index name (the alias).")],
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
    from xlidx.indices.calibrate import IndexModel
    from xlidx.indices.calibrate import calibrate as do_calibrate
    from xlidx.indices.calibration import check_mode
    from xlidx.indices.manage import resolve

    if centering is not None:
        check_mode(centering)
    backend = state(ctx).backend()
    current = resolve(backend, name)
    if current is None:
        raise MappingError(f"no xlidx index named {name!r} to calibrate")
    done = _calibrate(
        lambda progress: do_calibrate(
            backend,
            current,
            encoder=IndexModel(current, device=device),
            mode=centering,
            min_docs=min_docs,
            sample_docs=sample_docs,
            progress=progress,
        ),
        show=not as_json,
    )
    assert done is not None  # a full calibration always reports
    if as_json:
        out.print_json(json.dumps(done.to_json()))
        return
    out.print(calibration_line(done.to_json()))
    out.print(f"moved the vectors of {done.rewritten} document(s) in {done.seconds:.1f}s")


def calibration_line(cal: dict[str, Any]) -> str:
    """One line on a calibration (``Calibrated.to_json`` or ``_meta``'s summary)."""
    langs = ", ".join(f"{k} {v['docs']}" for k, v in sorted(cal.get("languages", {}).items()))
    state = "on" if cal.get("centering") else "off"
    return f"centering {state} ({cal.get('mode')}): {cal.get('reason')}; means: {langs or '-'}"


def _calibrate(run: Any, *, show: bool) -> Any:
    """Run a calibration with a progress bar on a terminal."""
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

        return run(progress)


@app.command()
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Index name (the alias).")],
    as_json: JsonOpt = False,
) -> None:
    """Point NAME back at its previous version (the one `migrate` kept)."""
    from xlidx.indices.manage import rollback as do_rollback

    report = do_rollback(state(ctx).backend(), name)
    if as_json:
        out.print_json(json.dumps(report))
    else:
        out.print(f"alias {name} now points at {report['to']} (was {report['from']})")


@app.command()
def prune(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Index name (the alias).")],
    keep: Annotated[
        int,
        typer.Option(help="Versions to keep, counting the current one (always kept)."),
    ] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Delete old versions of NAME, keeping the current one and the newest others."""
    from xlidx.indices.manage import prune as do_prune

    report = do_prune(state(ctx).backend(), name, keep)
    if as_json:
        out.print_json(json.dumps(report))
    elif report["deleted"]:
        out.print(f"deleted {', '.join(report['deleted'])}; kept {', '.join(report['kept'])}")
    else:
        out.print(f"nothing to prune; kept {', '.join(report['kept'])}")


@app.command()
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Index name (the alias).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete the alias NAME and every version behind it (asks first on a terminal)."""
    from xlidx.indices.manage import all_versions
    from xlidx.indices.manage import delete as do_delete
    from xlidx.indices.spec import validate_index_name

    validate_index_name(name)
    backend = state(ctx).backend()
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"refusing to delete {name} without a terminal to confirm: pass --yes"
            )
        versions = all_versions(backend, name)
        listed = ", ".join(versions) or "no versions"
        if not typer.confirm(f"delete {name} and {listed}?", default=False, err=True):
            err.print("not deleted")
            raise typer.Exit(1)
    report = do_delete(backend, name)
    if as_json:
        out.print_json(json.dumps(report))
    else:
        out.print(f"deleted {name}: {', '.join(report['deleted'])}")


def _gate_spec(
    gate: Path | None,
    qrels: Path | None,
    metric: str,
    max_drop: float,
    mode: str,
    device: str,
    report: Path | None,
) -> Any:
    """The checked gate settings (read before anything is migrated), or None without --gate."""
    if gate is None:
        if qrels is not None or report is not None:
            raise ConfigError("--qrels and --report apply with --gate QUERIES")
        return None
    if qrels is None:
        raise ConfigError("--gate needs --qrels FILE (the relevance judgments)")
    from xlidx.eval.data import check_qrels, read_qrels, read_queries
    from xlidx.eval.gate import GateSpec, canonical_metric
    from xlidx.query.plan import MODES

    if mode not in MODES:
        raise ConfigError(f"unknown --gate-mode {mode!r}: expected {', '.join(MODES)}")
    metric = canonical_metric(metric)
    queries = read_queries(gate)
    judgments = read_qrels(qrels)
    check_qrels(queries, judgments)
    return GateSpec(
        queries=queries, qrels=judgments, metric=metric, max_drop=max_drop, mode=mode,
        device=device,
    )  # fmt: skip
