"""``xlidx dev``: a local single-node OpenSearch or Elasticsearch (and Redis) for trying
xlidx and for tests. ``--backend`` picks the engine; each has its own default port, files
and pid file, so both can run at once. ``--with-ml`` is the OpenSearch node with ml-commons,
from an install of its own, on port 9210 by default."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

import typer

from xlidx.cli._state import err, out
from xlidx.config import ConnectionSettings
from xlidx.devnode.cluster import DevCluster, default_port
from xlidx.devnode.engines import Engine
from xlidx.devnode.ml import ML_PORT
from xlidx.devnode.node import DEFAULT_PORTS, START_TIMEOUT, running_pid, url_of
from xlidx.devnode.paths import DevPaths
from xlidx.devnode.redis import DEFAULT_REDIS_PORT, ping

app = typer.Typer(
    help=(
        "Run a local single-node OpenSearch (k-NN, neural-search; ml-commons with --with-ml) "
        "or Elasticsearch, and Redis, without Docker."
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
            + f", {ML_PORT} with --with-ml]"
        ),
        show_default=False,
    ),
]
RedisPortOpt = Annotated[int, typer.Option("--redis-port", help="Port of Redis on 127.0.0.1.")]
NodesOpt = Annotated[
    int,
    typer.Option(
        "--nodes",
        min=1,
        help="Nodes in the cluster, on HTTP ports PORT..PORT+N-1 (transport: each + 100). "
        "Several nodes default to PORT 9250 for opensearch, 9260 for elasticsearch.",
    ),
]


WithMlOpt = Annotated[
    bool,
    typer.Option(
        "--with-ml",
        help=f"The OpenSearch node with the ml-commons plugin (its own install; port {ML_PORT} "
        "unless --port says otherwise).",
    ),
]


def _log(message: str) -> None:
    err.print(f"[dim]… {message}[/dim]")


def _paths(backend: Engine, port: int | None, ml: bool = False) -> DevPaths:
    port = default_port(backend, ml=ml) if port is None else port
    return DevPaths.from_env(port, engine=backend, ml=ml)


def _cluster(backend: Engine, port: int | None, nodes: int, ml: bool = False) -> DevCluster:
    return DevCluster.from_env(port, nodes, engine=backend, ml=ml)


def _up_hint(paths: DevPaths, nodes: int = 1) -> str:
    args = ["xlidx", "dev", "up"]
    if paths.engine != "opensearch":
        args += ["--backend", paths.engine]
    if paths.ml:
        args += ["--with-ml"]
    if paths.port != default_port(paths.engine, nodes, ml=paths.ml):
        args += ["--port", str(paths.port)]
    if nodes > 1:
        args += ["--nodes", str(nodes)]
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
    nodes: NodesOpt = 1,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Wipe the data of the (stopped) nodes first: a new, empty cluster.",
        ),
    ] = False,
    with_ml: WithMlOpt = False,
) -> None:
    """Download (once), install and start the dev node (or a cluster of --nodes nodes); wait
    until it is healthy (every node joined). A node already running on the port is reused;
    --with-ml refuses a port where the node without ml-commons runs."""
    from xlidx.devnode.cluster import start_cluster
    from xlidx.devnode.node import start
    from xlidx.devnode.redis import start_redis

    paths = _paths(backend, port, with_ml)
    if nodes == 1 and not fresh:
        res = start(paths, heap=heap, timeout=timeout, log=_log)
        verb = "already running" if res.already_running else f"started in {res.seconds:.1f}s"
        shown = replace(paths, ml=res.ml).display
        out.print(f"{shown} {verb} at {res.url} (pid {res.pid})")
    else:
        cluster = _cluster(backend, port, nodes, with_ml)
        paths = cluster.nodes[0]
        cres = start_cluster(cluster, heap=heap, timeout=timeout, fresh=fresh, log=_log)
        verb = "already running" if cres.already_running else f"started in {cres.seconds:.1f}s"
        pids = ", ".join(str(p) for p in cres.pids)
        out.print(
            f"{cluster.spec.display} cluster of {cluster.size} node(s) {verb} at "
            f"{','.join(cres.urls)} (pids {pids}; health {cres.health.get('status')})"
        )
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
    nodes: NodesOpt = 1,
    with_ml: WithMlOpt = False,
) -> None:
    """Stop the processes `xlidx dev up` started (and nothing else): the node on the port,
    with ml-commons or without."""
    from xlidx.devnode.cluster import stop_cluster
    from xlidx.devnode.redis import stop_redis

    cluster = _cluster(backend, port, nodes, with_ml)
    paths = cluster.nodes[0]
    for node, stopped in zip(cluster.nodes, stop_cluster(cluster), strict=True):
        out.print(
            f"{node.spec.display} at {url_of(node.port)}: "
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
    nodes: NodesOpt = 1,
    with_ml: WithMlOpt = False,
) -> None:
    """URL, version, plugins and health of the dev node (or of the --nodes cluster: every
    node's URL and pid), and whether it was started --with-ml. Exits 1 when it is not
    running."""
    from xlidx.backends import describe
    from xlidx.cli.cluster import print_cluster
    from xlidx.devnode.node import runs_ml
    from xlidx.errors import ConnectionFailed

    cluster = _cluster(backend, port, nodes, with_ml)
    paths = cluster.nodes[0]
    url = url_of(paths.port)
    report: dict[str, Any] = {"backend": paths.engine, "url": url, "running": False}
    pids = [running_pid(n) for n in cluster.nodes]
    members = [{"url": u, "pid": pid} for u, pid in zip(cluster.urls, pids, strict=True)]
    try:
        live = tuple(u for u, pid in zip(cluster.urls, pids, strict=True) if pid) or cluster.urls
        report.update(describe(ConnectionSettings(urls=live, timeout=5.0)))
        report["running"] = True
        report["pid"] = running_pid(paths)
        report["started_by_xlidx"] = report["pid"] is not None
        report["with_ml"] = runs_ml(paths)
    except ConnectionFailed:
        pass
    if nodes > 1:
        report["members"] = members
    report["redis"] = {"url": f"redis://127.0.0.1:{redis_port}/0", "running": ping(redis_port)}
    if as_json:
        out.print_json(json.dumps(report))
    elif report["running"]:
        print_cluster(report)
        if report["with_ml"]:
            out.print("ml:       ml-commons (started with --with-ml)")
        for m in report.get("members", []):
            out.print(f"node:     {m['url']} {'pid ' + str(m['pid']) if m['pid'] else 'down'}")
        redis = report["redis"]
        out.print(f"redis:    {redis['url'] if redis['running'] else 'not running'}")
    else:
        out.print(
            f"{paths.display} dev node at {url}: not running "
            f"(start it with `{_up_hint(paths, nodes)}`)"
        )
    if not report["running"]:
        raise typer.Exit(1)
