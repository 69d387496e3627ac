"""``xlidx info`` and ``xlidx index``: look at the configured cluster."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from xlidx.cli._state import out, state

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

index_app = typer.Typer(
    help="Manage xlidx indices (versioned, behind aliases).", no_args_is_help=True
)


def info(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Version, plugins and health of the configured cluster (see the connection options)."""
    from xlidx.backends.opensearch import describe

    report = describe(state(ctx).connection())
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(f"url:      {report['url']}")
    out.print(f"version:  {report['distribution']} {report['version']}")
    out.print(f"health:   {report['health']} ({report['nodes']} node(s))")
    out.print(f"plugins:  {', '.join(report['plugins']) or '(none)'}")


@index_app.command("list")
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
