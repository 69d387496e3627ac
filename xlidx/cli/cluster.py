"""``xlidx info``: look at the configured cluster."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from xlidx.cli._state import out, state

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def info(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Engine, version, plugins and health of the configured cluster (see the connection
    options), and what xlidx found it can do."""
    backend = state(ctx).backend()
    report = backend.describe()
    report["capabilities"] = backend.capabilities().to_json()
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
    caps = report.get("capabilities")
    if caps:
        fusion = ", ".join(caps["server_fusion"]) or "none (xlidx fuses on the client)"
        out.print(f"server-side fusion: {fusion}")
        out.print(f"vector index types: {', '.join(caps['vector_index_types'])}")
