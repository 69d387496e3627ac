"""The ``xlidx`` command line: an adapter over the service layer (:mod:`xlidx.workflows`).

Command groups live one per module and are assembled here; options shared by several
commands live in :mod:`xlidx.cli.options`. A command parses its flags, calls the library and
renders the result; the workflows themselves are not here.

Exit codes:

* 0: success;
* 1: an error, one line on stderr (``error: …``): any :class:`~xlidx.errors.XlidxError`;
* 2: a usage error (a bad flag or argument, from click); and for ``xlidx ingest`` (in-process
  or ``--queue``): some records were dead-lettered, the rest were indexed;
* 3: ``xlidx index migrate --gate``: the gate refused the new version (the alias stays);
* 130 and 143: stopped by SIGINT or SIGTERM (128 + the signal), after a summary.

``xlidx --help`` must stay light: nothing here imports torch, transformers,
sentence-transformers or argostranslate at module level.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from xlidx import __version__
from xlidx.cli import cluster, connect, dev, index, models, queue
from xlidx.cli._state import CliState, err
from xlidx.cli.connect_es import elasticsearch_command
from xlidx.cli.enrich import enrich_command
from xlidx.cli.eval import eval_command
from xlidx.cli.ingest import ingest_command
from xlidx.cli.query import query_command
from xlidx.cli.serve import serve_command
from xlidx.cli.worker import worker_command
from xlidx.errors import XlidxError

app = typer.Typer(
    name="xlidx",
    help=(
        "Cross-lingual hybrid search on OpenSearch/Elasticsearch: detect, translate and embed "
        "documents, index them into managed versioned indices, and query them in any language."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xlidx {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="Cluster URL; repeat for several nodes. (env: XLIDX_URL)",
            show_default=False,
        ),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Basic-auth user. (env: XLIDX_USERNAME)", show_default=False)
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="Basic-auth password; prefer XLIDX_PASSWORD, flags show up in `ps`.",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key. (env: XLIDX_API_KEY)", show_default=False)
    ] = None,
    ca_certs: Annotated[
        Path | None,
        typer.Option(help="CA bundle to verify the cluster's certificate. (env: XLIDX_CA_CERTS)"),
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option(help="Client certificate (PEM). (env: XLIDX_CLIENT_CERT)")
    ] = None,
    client_key: Annotated[
        Path | None, typer.Option(help="Client certificate key (PEM). (env: XLIDX_CLIENT_KEY)")
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Do not verify the cluster's TLS certificate. (env: XLIDX_VERIFY_CERTS=false)",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help="Request timeout in seconds (default 30). (env: XLIDX_TIMEOUT)"),
    ] = None,
    backend: Annotated[
        Literal["opensearch", "elasticsearch"] | None,
        typer.Option(
            "--backend",
            help="opensearch or elasticsearch; detected from the cluster when not given. "
            "(env: XLIDX_BACKEND)",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML config file with a \\[connection] table. (env: XLIDX_CONFIG; default "
            "~/.config/xlidx/config.toml)"
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Settings given here apply to every command."""
    flags = {
        "urls": url or None,
        "username": username,
        "password": password,
        "api_key": api_key,
        "ca_certs": ca_certs,
        "client_cert": client_cert,
        "client_key": client_key,
        "verify_certs": False if insecure else None,
        "timeout": timeout,
        "engine": backend,
    }
    ctx.obj = CliState(flags=flags, config_path=config, verbose=verbose)
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


app.command("ingest")(ingest_command)
app.command("query")(query_command)
app.command("enrich")(enrich_command)
app.command("eval")(eval_command)
app.add_typer(index.app, name="index")
app.add_typer(models.app, name="models")
app.add_typer(dev.app, name="dev")
app.command("info")(cluster.info)
app.command("worker")(worker_command)
app.command("serve")(serve_command)
app.add_typer(queue.app, name="queue")
connect.app.command("opensearch")(connect.opensearch_command)
connect.app.command("elasticsearch")(elasticsearch_command)
app.add_typer(connect.app, name="connect")
app.add_typer(queue.deadletters_app, name="deadletters")


def main() -> None:
    """Console-script entry point: runs the app and turns XlidxError into one line + exit code."""
    try:
        app()
    except XlidxError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", markup=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
