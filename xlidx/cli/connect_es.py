"""``xlidx connect elasticsearch``: the cluster calls ``xlidx serve`` for the vectors of
what applications write to an index (:mod:`xlidx.workflows.connect_es`). Registered as
``connect elasticsearch`` on the ``connect`` group."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from xlidx.cli._state import out, state
from xlidx.cli.options import JsonOpt

if TYPE_CHECKING:
    from xlidx.workflows.connect_es import EsConnection


def elasticsearch_command(
    ctx: typer.Context,
    index: Annotated[
        str, typer.Option("--index", help="The xlidx index (an alias).", show_default=False)
    ],
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="The URL of the `xlidx serve` the cluster will call, as the cluster reaches "
            "it (default: $XLIDX_SERVE_URL, or url in the config file's \\[serve] table).",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="The key the service takes (its --api-key); kept in the endpoint's secrets. "
            "Default: $XLIDX_SERVE_API_KEY, or api_key in the config file's \\[serve] table.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print every request it would send (keys redacted); send none."
        ),
    ] = False,
    remove: Annotated[
        bool,
        typer.Option(
            "--remove",
            help="Delete what it made (the pipeline, the endpoint) and its record; again is a "
            "no-op.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Let Elasticsearch call `xlidx serve` for the vectors of documents your applications
    write to INDEX.

    Creates the inference endpoint xlidx-INDEX (the `custom` service: it posts to the
    service's /v1/embeddings with model xlidx/INDEX and input_type ingest or search, which
    the service turns into the index's passage or query vectors), a dense_vector per text
    field under xlidx_inference, and the ingest pipeline xlidx-INDEX-ingest (one `inference`
    processor per text field), run by default on the index. Records it in the index's
    _meta.xlidx.integration.

    Needs an inference API: Elasticsearch's default distribution (8.19+) under an enterprise
    or trial licence. Elsewhere (the integ-test node of `xlidx dev`, a basic licence) it
    stops with one line and changes nothing: keep the index up to date with `xlidx ingest
    --from-index SRC --index INDEX --follow` instead.
    """
    from xlidx.config import Secret, serve_client_settings
    from xlidx.workflows import Cluster
    from xlidx.workflows.connect_es import connect_elasticsearch, disconnect_elasticsearch

    cli = state(ctx)
    target = Cluster.from_settings(cli.flags, config_path=cli.config_path).index(index)
    if remove:
        result = disconnect_elasticsearch(target, dry_run=dry_run)
    else:
        configured = serve_client_settings(cli.config_path)
        url = serve or configured.url
        if not url:
            raise typer.BadParameter(
                "name the service the cluster will call (or set XLIDX_SERVE_URL)",
                param_hint="--serve",
            )
        key = Secret(api_key) if api_key else configured.api_key
        result = connect_elasticsearch(target, url, api_key=key, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    print_connection(result)


def print_connection(result: EsConnection) -> None:
    r = result
    if r.dry_run:
        verb = "remove" if r.action == "remove" else "connect"
        out.print(
            f"dry run: only the index's state was read. {verb} would send, in order "
            "(keys redacted):"
        )
        for n, req in enumerate(r.requests, 1):
            out.print(f"{n:>2}. {req.line()}   ({req.action})", markup=False)
            shown = req.to_json()
            for part in ("headers", "body"):
                if part in shown:
                    text = json.dumps(shown[part], indent=2, ensure_ascii=False)
                    out.print(_indent(text), markup=False)
        return
    where = f"{r.index} ({r.concrete})" if r.concrete else r.index
    if r.action == "remove":
        out.print(f"disconnected {where} from Elasticsearch's inference API:")
    else:
        out.print(f"connected {where} to xlidx serve at {r.serve}:")
    names = {
        "endpoint": f"inference endpoint {r.endpoint}",
        "mapping": "vector fields under xlidx_inference",
        "pipeline": f"ingest pipeline {r.pipeline}",
        "default_pipeline": "the index's default pipeline",
    }
    for part, what in r.parts.items():
        out.print(f"  {names.get(part, part)}: {what}")
    if r.recorded:
        where_meta = "recorded in" if r.action == "connect" else "dropped from"
        out.print(f"{where_meta} {r.concrete}'s _meta.xlidx.integration")
    if r.action == "connect":
        out.print(
            f'query vectors: POST _inference/text_embedding/{r.endpoint} {{"input": [...], '
            '"input_type": "search"}',
            markup=False,
        )


def _indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in text.splitlines())
