"""``xlidx query``: one cross-lingual query, as a table or JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from xlidx.cli._state import err, out, state
from xlidx.cli.cluster import connect
from xlidx.errors import ConfigError

if TYPE_CHECKING:
    from xlidx.search import QueryResult
    from xlidx.serve.client import ServeClient

FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="FIELD=VALUE (repeat; VALUE may be a|b for any of several), or FIELD>=N, FIELD<=N, "
        "FIELD>N, FIELD<N for ranges.",
        show_default=False,
    ),
]


def _snippet(hit: Any) -> str:
    for frags in hit.highlight.values():
        if frags:
            marked = escape(str(frags[0]))
            return marked.replace("<em>", "[bold yellow]").replace("</em>", "[/bold yellow]")
    src = hit.source
    for key in ("title", "body", "text"):
        if isinstance(src.get(key), str) and src[key]:
            text: str = src[key]
            return escape(text[:120] + ("…" if len(text) > 120 else ""))
    return ""


def query_command(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The query, in any language.")],
    index: Annotated[str, typer.Option("--index", help="The xlidx index (alias).")] = "",
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or knn.")] = "hybrid",
    k: Annotated[int, typer.Option("--k", help="Number of hits.", min=1, max=1000)] = 10,
    offset: Annotated[int, typer.Option(help="Skip this many hits (paging).", min=0)] = 0,
    lang: Annotated[
        list[str] | None,
        typer.Option(
            "--lang", help="Only documents in this language (repeat).", show_default=False
        ),
    ] = None,
    query_lang: Annotated[
        str | None,
        typer.Option(help="The query's language (default: detected).", show_default=False),
    ] = None,
    filters: FilterOpt = None,
    translate_query: Annotated[
        bool,
        typer.Option(
            "--translate-query", help="Also translate the query into the index's languages."
        ),
    ] = False,
    fusion: Annotated[str, typer.Option(help="Hybrid fusion: minmax or rrf.")] = "minmax",
    weights: Annotated[
        str | None,
        typer.Option(
            help="BM25,kNN fusion weights, e.g. 0.5,0.5 (default: BM25 scaled by the share of "
            "documents it can match in the query's languages).",
            show_default=False,
        ),
    ] = None,
    candidates: Annotated[
        int, typer.Option(help="Hits per side before fusion; the kNN k.", min=1)
    ] = 100,
    ef_search: Annotated[
        int | None, typer.Option(help="HNSW ef_search for this query.", show_default=False)
    ] = None,
    balance: Annotated[
        bool,
        typer.Option("--balance", help="Normalize scores per document language before fusion."),
    ] = False,
    highlight: Annotated[bool, typer.Option(help="Highlight matches in the snippet.")] = True,
    centering: Annotated[
        bool,
        typer.Option(
            help="Center the query vector with its language's mean where the index is "
            "calibrated to (`xlidx index calibrate`).",
        ),
    ] = True,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Comma-separated source fields to return (default: all).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the BM25 and kNN ranks behind each hit.")
    ] = False,
    retry_for: Annotated[
        str,
        typer.Option(
            "--retry-for",
            help="How long to retry a query the cluster cannot answer for now (refused or "
            "reset connections, 429/502/503/504, shards with no live copy), e.g. 30s, 2m; 0 "
            "fails at once. Each retry is one line on stderr.",
        ),
    ] = "30s",
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="Ask a running `xlidx serve` at this URL instead of loading the model here "
            "(default: $XLIDX_SERVE_URL, or url in the config file's \\[serve] table).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Hybrid cross-lingual search over an xlidx index.

    A query the cluster cannot answer for the moment (a node restarting or lost) is tried
    again, on the other nodes of XLIDX_URL, for up to --retry-for; then it fails with one line
    and exit code 1.
    """
    from xlidx.config import format_duration, parse_duration
    from xlidx.errors import BackendError
    from xlidx.query.options import QueryOptions
    from xlidx.spec import validate_index_name

    if not index:
        raise ConfigError("--index NAME is required")
    validate_index_name(index)
    budget = parse_duration("--retry-for", retry_for)
    options = QueryOptions(
        text, mode=mode, k=k, offset=offset, langs=list(lang or []), query_lang=query_lang,
        filters=list(filters or []), translate_query=translate_query, fusion=fusion,
        weights=weights, candidates=candidates, ef_search=ef_search, balance=balance,
        highlight=highlight and not as_json, centering=centering, explain=explain,
        source=[f.strip() for f in source.split(",") if f.strip()] if source else None,
    )  # fmt: skip
    q = options.to_query()
    client = serve_client(ctx, serve)
    if client is not None:
        result = client.search(index, options, retry_for=budget)
        _show(result, as_json=as_json, offset=offset, explain=explain)
        return

    def report(attempt: int, wait: float, exc: BackendError) -> None:
        err.print(
            f"retrying the query in {format_duration(wait)} (retry {attempt}): {exc}",
            markup=False,
        )

    result = (
        connect(ctx)
        .index(index)
        .search(q, translate=translate_query, explain=explain, retry_for=budget, on_retry=report)
    )
    _show(result, as_json=as_json, offset=offset, explain=explain)


def serve_client(ctx: typer.Context, url: str | None) -> ServeClient | None:
    """The client of the service ``--serve`` (or the settings) names; None: query here."""
    from xlidx.config import serve_client_settings
    from xlidx.serve.client import ServeClient

    settings = serve_client_settings(state(ctx).config_path)
    url = url or settings.url
    return ServeClient(url, api_key=settings.api_key) if url else None


def _show(result: QueryResult, *, as_json: bool, offset: int, explain: bool) -> None:
    if as_json:
        out.print_json(json.dumps(result.to_json(explain), ensure_ascii=False, default=str))
        return
    _print_result(result, offset=offset, explain=explain)


def _print_result(result: QueryResult, *, offset: int, explain: bool) -> None:
    table = Table("rank", "score", "lang", "id", "title / snippet", show_lines=False)
    if explain:
        table.add_column("bm25 rank (score)")
        table.add_column("knn rank (score)")
    for rank, hit in enumerate(result.hits, start=offset + 1):
        row = [str(rank), f"{hit.score:.4f}", hit.lang or "", escape(hit.id), _snippet(hit)]
        if explain:
            row += [
                "-" if hit.bm25_rank is None else f"{hit.bm25_rank} ({hit.bm25_score:.3f})",
                "-" if hit.knn_rank is None else f"{hit.knn_rank} ({hit.knn_score:.3f})",
            ]
        table.add_row(*row)
    out.print(table)
    extra = ""
    if result.mode == "hybrid" and result.weights is not None:
        extra = (
            f", {result.fusion} fusion on the {result.fused_on}, weights bm25 "
            f"{result.weights[0]:g} / knn {result.weights[1]:g}"
        )
    out.print(
        f"[dim]{len(result.hits)} hits in {result.took_ms:.0f} ms ({result.mode}, query language "
        f"{result.query_lang or '-'}{extra})[/dim]"
    )
