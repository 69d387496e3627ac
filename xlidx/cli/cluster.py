"""``xlidx info``: look at the configured cluster."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from xlidx.cli._state import out, state

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def info(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Version, plugins and health of the configured cluster (see the connection options)."""
    from xlidx.backends.opensearch import describe

    report = describe(state(ctx).connection())
    if as_json:
        out.print_json(json.dumps(report))
        return
    print_cluster(report)


def print_cluster(report: dict[str, Any]) -> None:
    """The lines shared by `xlidx info` and `xlidx dev status`."""
    out.print(f"url:      {report['url']}")
    out.print(f"version:  {report['distribution']} {report['version']}")
    out.print(f"health:   {report['health']} ({report['nodes']} node(s))")
    out.print(f"plugins:  {', '.join(report['plugins']) or '(none)'}")
