"""``xlidx info``: look at the configured cluster; :func:`connect`, the cluster every command
works on."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xlidx.cli._state import out, state

if TYPE_CHECKING:
    from xlidx.workflows import Cluster

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def connect(ctx: typer.Context) -> Cluster:
    """The configured cluster (the root command's flags, then ``XLIDX_*`` and the config
    file); its backend opens on first use."""
    from xlidx.workflows import Cluster

    cli = state(ctx)
    return Cluster.from_settings(cli.flags, config_path=cli.config_path)


def info(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Engine, version, plugins and health of the configured cluster (see the connection
    options), and what xlidx found it can do."""
    report = connect(ctx).describe()
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
