"""``xlidx dev``: a local single-node OpenSearch or Elasticsearch (and Redis) for trying
xlidx and for tests. ``--backend`` picks the engine; each has its own default port, files
and pid file, so both can run at once."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from xlidx.cli._state import err, out
from xlidx.config import ConnectionSettings
from xlidx.devnode.engines import Engine
from xlidx.devnode.node import DEFAULT_PORTS, START_TIMEOUT, running_pid, url_of
from xlidx.devnode.paths import DevPaths
from xlidx.devnode.redis import DEFAULT_REDIS_PORT, ping

app = typer.Typer(
    help=(
        "Run a local single-node OpenSearch (k-NN, neural-search) or Elasticsearch, and "
        "Redis, without Docker."
    ),
    no_args_is_help=True,
)

BackendOpt = Annotated[Engine, typer.Option("--backend", help="Which engine runs the dev node.")]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port",
        help=(
            "HTTP port of the node on 127.0.0.1. \\[default: "
            + ", ".join(f"{port} for {name}" for name, port in DEFAULT_PORTS.items())
            + "]"
        ),
        show_default=False,
    ),
]
RedisPortOpt = Annotated[int, typer.Option("--redis-port", help="Port of Redis on 127.0.0.1.")]


def _log(message: str) -> None:
    err.print(f"[dim]… {message}[/dim]")


def _paths(backend: Engine, port: int | None) -> DevPaths:
    return DevPaths.from_env(DEFAULT_PORTS[backend] if port is None else port, engine=backend)


def _up_hint(paths: DevPaths) -> str:
    args = ["xlidx", "dev", "up"]
    if paths.engine != "opensearch":
        args += ["--backend", paths.engine]
    if paths.port != paths.spec.default_port:
        args += ["--port", str(paths.port)]
    return " ".join(args)


@app.command()
def up(
    backend: BackendOpt = "opensearch",
    port: PortOpt = None,
    heap: Annotated[
        str | None,
        typer.Option(
            help=(
                "JVM heap, e.g. 1g or 512m. \\[default: 1g for opensearch, 512m for elasticsearch]"
            ),
            show_default=False,
        ),
    ] = None,
    with_redis: Annotated[
        bool, typer.Option("--with-redis", help="Also start redis-server (the Celery broker).")
    ] = False,
    redis_port: RedisPortOpt = DEFAULT_REDIS_PORT,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the node to become healthy.")
    ] = START_TIMEOUT,
) -> None:
    """Download (once), install and start the dev node; wait until it is healthy."""
    from xlidx.devnode.node import start
    from xlidx.devnode.redis import start_redis

    paths = _paths(backend, port)
    res = start(paths, heap=heap, timeout=timeout, log=_log)
    verb = "already running" if res.already_running else f"started in {res.seconds:.1f}s"
    out.print(f"{paths.spec.display} {verb} at {res.url} (pid {res.pid})")
    if with_redis:
        was_up = start_redis(paths, redis_port)
        out.print(
            f"Redis {'already running' if was_up else 'started'} at redis://127.0.0.1:{redis_port}/0"
        )


@app.command()
def down(
    backend: BackendOpt = "opensearch",
    port: PortOpt = None,
    with_redis: Annotated[
        bool, typer.Option("--with-redis", help="Also stop the Redis xlidx started.")
    ] = False,
    redis_port: RedisPortOpt = DEFAULT_REDIS_PORT,
) -> None:
    """Stop the processes `xlidx dev up` started (and nothing else)."""
    from xlidx.devnode.node import stop
    from xlidx.devnode.redis import stop_redis

    paths = _paths(backend, port)
    stopped = stop(paths)
    out.print(
        f"{paths.spec.display} at {url_of(paths.port)}: "
        f"{'stopped' if stopped else 'was not running'}"
    )
    if with_redis:
        stopped = stop_redis(paths, redis_port)
        out.print(f"Redis at 127.0.0.1:{redis_port}: {'stopped' if stopped else 'was not running'}")


@app.command()
def status(
    backend: BackendOpt = "opensearch",
    port: PortOpt = None,
    redis_port: RedisPortOpt = DEFAULT_REDIS_PORT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """URL, version, plugins and health of the dev node. Exits 1 when it is not running."""
    from xlidx.backends import describe
    from xlidx.cli.cluster import print_cluster
    from xlidx.errors import ConnectionFailed

    paths = _paths(backend, port)
    url = url_of(paths.port)
    report: dict[str, Any] = {"backend": paths.engine, "url": url, "running": False}
    try:
        report.update(describe(ConnectionSettings(urls=(url,), timeout=5.0)))
        report["running"] = True
        report["pid"] = running_pid(paths)
        report["started_by_xlidx"] = report["pid"] is not None
    except ConnectionFailed:
        pass
    report["redis"] = {"url": f"redis://127.0.0.1:{redis_port}/0", "running": ping(redis_port)}
    if as_json:
        out.print_json(json.dumps(report))
    elif report["running"]:
        print_cluster(report)
        redis = report["redis"]
        out.print(f"redis:    {redis['url'] if redis['running'] else 'not running'}")
    else:
        out.print(
            f"{paths.spec.display} dev node at {url}: not running "
            f"(start it with `{_up_hint(paths)}`)"
        )
    if not report["running"]:
        raise typer.Exit(1)
