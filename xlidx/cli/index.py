"""``xlidx index``: create, inspect and migrate versioned xlidx indices."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    resolve_model,
    split_csv,
)
from xlidx.documents import DEFAULT_TEXT_FIELDS
from xlidx.errors import MappingError

app = typer.Typer(help="Manage xlidx indices (versioned, behind aliases).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command("list")
def list_indices(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the cluster's indices with their aliases and document counts."""
    from xlidx.backends.opensearch import call, make_client

    settings = state(ctx).connection()
    client = make_client(settings)
    rows: list[dict[str, Any]] = call(
        settings,
        "list indices",
        lambda: client.cat.indices(format="json", h="index,health,docs.count,store.size"),
    )
    aliases: list[dict[str, Any]] = call(
        settings, "list aliases", lambda: client.cat.aliases(format="json")
    )
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
    engine: str,
    space: str,
) -> Any:
    from xlidx.mapping.spec import IndexSpec, VectorSpec

    return IndexSpec(
        name=name,
        embedding=embedding,
        text_fields=tuple(text_fields),
        languages=tuple(languages),
        translate_to=tuple(translate_to),
        vector=VectorSpec(engine=engine, space_type=space),
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
        str, typer.Option(help="kNN engine: lucene (dev node), faiss or nmslib.")
    ] = "lucene",
    space: Annotated[str, typer.Option(help="cosinesimil, innerproduct or l2.")] = "cosinesimil",
    as_json: JsonOpt = False,
) -> None:
    """Create NAME-v1 behind the alias NAME (does nothing if NAME exists)."""
    from xlidx.backends.opensearch import make_client
    from xlidx.ingest import model_source
    from xlidx.mapping.manage import ensure
    from xlidx.mapping.spec import check_model, validate_index_name
    from xlidx.pipeline.detect import DEFAULT_LANGUAGES, parse_languages
    from xlidx.pipeline.embed import load_embedder

    validate_index_name(name)
    targets = parse_languages(split_csv(translate_to)) if translate_to else ()
    langs = tuple(
        dict.fromkeys((*parse_languages(split_csv(languages) or DEFAULT_LANGUAGES), *targets))
    )
    settings = state(ctx).connection()
    client = make_client(settings)
    embedder = load_embedder(resolve_model(model, None), device=device)
    embedding = {**embedder.describe(), "source": model_source(embedder)}
    spec = _spec(
        name,
        embedding,
        text_fields=split_csv(text_fields),
        languages=langs,
        translate_to=targets,
        engine=engine,
        space=space,
    )
    st, created = ensure(client, settings, spec)
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
    """Version, document count, model and languages of an xlidx index."""
    from xlidx.backends.opensearch import make_client
    from xlidx.mapping.manage import status as index_status

    settings = state(ctx).connection()
    report = index_status(make_client(settings), settings, name)
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
        f"vectors:    {vector.get('engine')} {vector.get('method')} {vector.get('space_type')}"
    )
    out.print(f"translate:  {', '.join(report['translate_to']) or '-'}")


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
    as_json: JsonOpt = False,
) -> None:
    """Build the next version (new mapping and/or model), copy or re-embed, move the alias.

    The old version is kept for rollback; the alias moves only when every document arrived.
    """
    from xlidx.backends.opensearch import make_client
    from xlidx.ingest import model_source
    from xlidx.mapping.manage import migrate as do_migrate
    from xlidx.mapping.manage import resolve

    settings = state(ctx).connection()
    client = make_client(settings)
    current = resolve(client, settings, name)
    if current is None:
        raise MappingError(f"no xlidx index named {name!r} to migrate")
    x = current.xlidx_meta
    embedding = dict(x.get("embedding", {}))
    transform = None
    if model is not None:
        from xlidx.mapping.reembed import reembedder
        from xlidx.pipeline.embed import load_embedder

        embedder = load_embedder(model, device=device)
        embedding = {**embedder.describe(), "source": model_source(embedder)}
        transform = reembedder(embedder, x)
    vector = dict(x.get("vector", {}))
    spec = _spec(
        name,
        embedding,
        text_fields=x.get("text_fields", DEFAULT_TEXT_FIELDS),
        languages=x.get("languages", ["en"]),
        translate_to=x.get("translate_to", []),
        engine=engine or vector.get("engine", "lucene"),
        space=space or vector.get("space_type", "cosinesimil"),
    )
    if not as_json:
        err.print(f"… migrating {current.index} ({'re-embedding' if transform else 'copying'})")
    report = do_migrate(client, settings, spec, transform=transform)
    if as_json:
        out.print_json(json.dumps(report))
    else:
        out.print(
            f"migrated {report['documents']} documents: {report['from']} -> {report['to']}; "
            f"alias {name} now points at {report['to']} ({report['from']} kept for rollback)"
        )
