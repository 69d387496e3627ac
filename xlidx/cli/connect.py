"""``xlidx connect``: make the cluster call ``xlidx serve`` for an index
(:mod:`xlidx.workflows.connect`; Elasticsearch: :mod:`xlidx.cli.connect_es`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from xlidx.cli._state import err, out, state
from xlidx.cli.cluster import connect as open_cluster

if TYPE_CHECKING:
    from xlidx.workflows.connect import Connected

app = typer.Typer(
    help="Make the cluster call a running `xlidx serve` for an index: applications' plain "
    "writes are enriched, and their hybrid queries ranked as `xlidx query` ranks them.",
    no_args_is_help=True,
)

IndexOpt = Annotated[str, typer.Option("--index", help="The xlidx index (alias) to connect.")]
ServeOpt = Annotated[
    str | None,
    typer.Option(
        "--serve",
        help="Base URL of the running `xlidx serve` the cluster is to call (default "
        "$XLIDX_SERVE_URL, or url in the config file's \\[serve] table). It must reach the "
        "same cluster.",
        show_default=False,
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="A key the service accepts; it becomes the connectors' credential (default "
        "$XLIDX_SERVE_API_KEY, or api_key in the config file's \\[serve] table).",
        show_default=False,
    ),
]
DryOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the requests it would send; send none.")
]
RemoveOpt = Annotated[
    bool, typer.Option("--remove", help="Take away everything an earlier connect made.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def opensearch_command(
    ctx: typer.Context,
    index: IndexOpt,
    serve: ServeOpt = None,
    api_key: KeyOpt = None,
    translate_to: Annotated[
        str | None,
        typer.Option(
            "--translate-to",
            help="Comma-separated languages every written document is translated into "
            "(added to those the index records).",
            show_default=False,
        ),
    ] = None,
    fusion: Annotated[
        str, typer.Option(help="How the search pipeline fuses hybrid queries: minmax or rrf.")
    ] = "minmax",
    dry_run: DryOpt = False,
    remove: RemoveOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Connect an index of an OpenSearch cluster with ml-commons to `xlidx serve`.

    Creates one connector and remote model per role (passage and query embeddings,
    translation, detection, whole documents), an ingest pipeline that turns an
    application's plain document into the one `xlidx ingest` writes (marking it
    xlidx.pending, never failing the write, when the service is down), and a search pipeline
    that fuses `hybrid` queries with xlidx's weights; sets both as the index's defaults and
    records them in its _meta. Idempotent: run it again to renew; --remove takes it away.
    """
    from xlidx.config import serve_client_settings
    from xlidx.errors import ConfigError
    from xlidx.workflows.connect import connect, disconnect

    if fusion not in ("minmax", "rrf"):
        raise ConfigError(f"--fusion {fusion!r}: expected minmax or rrf")
    target = open_cluster(ctx).index(index)
    log = _log(as_json)
    if remove:
        _print(disconnect(target, dry_run=dry_run, log=log), as_json)
        return
    given = serve_client_settings(state(ctx).config_path)
    url = serve or given.url
    key = api_key or (given.api_key.get() if given.api_key else None)
    if not url:
        raise ConfigError("--serve is required: the URL of the running `xlidx serve`")
    langs = tuple(t.strip() for t in (translate_to or "").split(",") if t.strip())
    result = connect(
        target, url, api_key=key or "", translate_to=langs, fusion=fusion,
        dry_run=dry_run, log=log,
    )  # fmt: skip
    _print(result, as_json)


def _log(quiet: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        if not quiet:
            err.print(f"[dim]{message}[/dim]")

    return log


def _print(result: Connected, as_json: bool) -> None:
    for warning in result.warnings:
        err.print(f"warning: {warning}")
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    if result.dry_run:
        for r in result.requests:
            body = f" {json.dumps(r.to_json().get('body'))}" if r.body is not None else ""
            out.print(f"{r.method} {r.path}{body}")
        return
    if result.removed or not result.models:
        what = "removed the integration of" if result.removed else "nothing to remove for"
        out.print(f"{what} {result.index} ({result.version})")
        return
    out.print(f"connected {result.index} ({result.version}) to {result.serve_url}")
    for role, mid in result.models.items():
        out.print(f"  model {role:<9} {mid}")
    out.print(f"  ingest pipeline  {result.ingest_pipeline} (index.default_pipeline)")
    weights = ", ".join(f"{w:g}" for w in result.weights or ())
    out.print(
        f"  search pipeline  {result.search_pipeline} (index.search.default_pipeline; "
        f"weights {weights})"
    )
    out.print(f"  query model for `neural`: {result.models.get('query')}")
