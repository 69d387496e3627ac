"""A dev cluster: several nodes of one engine on 127.0.0.1 that form one cluster.

Node ``i`` listens for HTTP on ``port + i`` and for transport on that port + 100
(:func:`~xlidx.devnode.node.transport_port`); each has its own :class:`DevPaths` (data, logs
and pid file keyed by its HTTP port), is named ``xlidx-dev-PORT``, lists every node's
transport port as a seed host and every node's name as the nodes that bootstrap the cluster
(``cluster.initial_cluster_manager_nodes`` / ``cluster.initial_master_nodes``). A node
restarted with :func:`start_node` keeps its data and rejoins. A cluster of one node is the
single dev node of :func:`~xlidx.devnode.node.start`, unchanged.

A cluster bootstraps once: nodes whose data directories belong to an earlier cluster on the
same ports would not form a new one, so ``start_cluster(fresh=True)`` (``xlidx dev up
--fresh``) wipes the data of the stopped nodes first.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from xlidx.devnode.engines import SPECS, Engine, EngineSpec
from xlidx.devnode.ml import ML_PORT
from xlidx.devnode.node import (
    START_TIMEOUT,
    StartResult,
    cluster_ports,
    http_json,
    launch,
    log_tail,
    pid_alive,
    read_pid,
    running_pid,
    start,
    stop,
    url_of,
)
from xlidx.devnode.paths import DevPaths
from xlidx.errors import DevNodeError

CLUSTER_PORT = 9250  # OpenSearch's multi-node default: off the single dev nodes' ports
CLUSTER_PORT_STEP = 10  # Elasticsearch's multi-node default: OpenSearch's + 10 (no overlap)
HEALTHY = ("green", "yellow")


def default_port(engine: Engine, nodes: int = 1, *, ml: bool = False) -> int:
    """The first HTTP port of a dev cluster of ``nodes`` nodes (pure).

    One node: the engine's own default (9200 OpenSearch, 9201 Elasticsearch), as always;
    9210 (``ML_PORT``) for the OpenSearch node with ml-commons (``ml``).
    Several: 9250 for OpenSearch and 9260 for Elasticsearch, so that two clusters of up to
    ten nodes each never share a port, and no cluster node shares the port (and so the data
    directory and pid file, keyed by port) of a single dev node on its default port."""
    if nodes <= 1:
        return ML_PORT if ml else SPECS[engine].default_port
    return CLUSTER_PORT + CLUSTER_PORT_STEP * list(SPECS).index(engine)


@dataclass(frozen=True)
class DevCluster:
    nodes: tuple[DevPaths, ...]

    @classmethod
    def from_env(
        cls,
        port: int | None,
        nodes: int = 1,
        engine: Engine = "opensearch",
        env: Any = None,
        *,
        ml: bool = False,
    ) -> DevCluster:
        """The cluster of ``nodes`` nodes from ``port`` on (default :func:`default_port`);
        ``ml``: the single OpenSearch node with ml-commons (never several)."""
        if ml and nodes > 1:
            raise DevNodeError("--with-ml starts a single node: drop --nodes")
        first = default_port(engine, nodes, ml=ml) if port is None else port
        ports = cluster_ports(first, nodes)
        return cls(tuple(DevPaths.from_env(p, env=env, engine=engine, ml=ml) for p in ports))

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p.port for p in self.nodes)

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def engine(self) -> Engine:
        return self.nodes[0].engine

    @property
    def spec(self) -> EngineSpec:
        return self.nodes[0].spec

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(url_of(p) for p in self.ports)

    def node(self, i: int) -> DevPaths:
        if not 0 <= i < self.size:
            raise DevNodeError(f"no node {i} in a cluster of {self.size}")
        return self.nodes[i]


@dataclass(frozen=True)
class ClusterStartResult:
    urls: tuple[str, ...]
    pids: tuple[int | None, ...]
    started: tuple[int, ...]  # the ports of the nodes started now
    seconds: float
    health: dict[str, Any]

    @property
    def already_running(self) -> bool:
        return not self.started


def health(
    cluster: DevCluster, timeout: float = 2.0, via: tuple[int, ...] | None = None
) -> dict[str, Any] | None:
    """``_cluster/health`` from the first node (of ``via``, default all) that answers it (a
    node with no elected cluster manager answers 503: the next one is asked)."""
    for port in cluster.ports if via is None else via:
        found = http_json(f"{url_of(port)}/_cluster/health", timeout=timeout)
        if found is not None and "number_of_nodes" in found:
            return found
    return None


def node_names(cluster: DevCluster) -> list[str]:
    """The names of the nodes in the cluster, as the first answering node sees them."""
    import json
    import urllib.request

    for url in cluster.urls:
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback http
                f"{url}/_cat/nodes?format=json&h=name", timeout=2.0
            ) as resp:
                return sorted(str(row["name"]) for row in json.loads(resp.read()))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return []


def wait_cluster(
    cluster: DevCluster,
    *,
    timeout: float = START_TIMEOUT,
    statuses: tuple[str, ...] = HEALTHY,
    watch: dict[int, int] | None = None,
    nodes: int | None = None,
    via: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Wait until ``nodes`` (default: all) nodes have joined and health is one of
    ``statuses``; ``watch`` maps ports to pids just launched (one that exits fails at once).
    ``via``: ask only these nodes (a restarted node answers once it has joined: the others
    may not have noticed yet that it had left)."""
    want = cluster.size if nodes is None else nodes
    t0 = time.monotonic()
    last: dict[str, Any] | None = None
    while True:
        last = health(cluster, via=via)
        if (
            last is not None
            and last.get("number_of_nodes") == want
            and last.get("status") in statuses
        ):
            return last
        for port, pid in (watch or {}).items():
            paths = cluster.nodes[cluster.ports.index(port)]
            if not pid_alive(read_pid(paths.pid_file) or pid, ""):
                raise DevNodeError(
                    f"{cluster.spec.display} node on {url_of(port)} exited during startup. "
                    f"Last log lines:\n{log_tail(paths)}"
                )
        if time.monotonic() - t0 > timeout:
            seen = (
                f"{last.get('number_of_nodes')} node(s), {last.get('status')}"
                if last
                else "no node answered"
            )
            raise DevNodeError(
                f"the {cluster.spec.display} cluster on {', '.join(cluster.urls)} did not reach "
                f"{want} node(s) and {'/'.join(statuses)} health within {timeout:.0f}s "
                f"({seen}). Last log lines of {url_of(cluster.ports[0])}:\n"
                f"{log_tail(cluster.nodes[0])}"
            )
        time.sleep(0.5)


def _check_member(paths: DevPaths) -> None:
    """A running node on a cluster port must be a cluster node, not the single dev node."""
    found = http_json(f"{url_of(paths.port)}/_nodes/_local?filter_path=nodes.*.name")
    names = [str(n.get("name")) for n in ((found or {}).get("nodes") or {}).values()]
    if names == ["xlidx-dev"]:
        raise DevNodeError(
            f"{url_of(paths.port)} runs the single {paths.spec.display} dev node; stop it "
            f"with `xlidx dev down --backend {paths.engine} --port {paths.port}` first"
        )


def wipe(cluster: DevCluster, *, logs: bool = False) -> None:
    """Delete the data (and with ``logs`` the logs) of the cluster's nodes; all must be
    stopped."""
    running = [p.port for p in cluster.nodes if running_pid(p) is not None]
    if running:
        raise DevNodeError(
            f"cannot wipe the data of running nodes ({', '.join(map(str, running))}): stop "
            f"the cluster first (`xlidx dev down --backend {cluster.engine} --port "
            f"{cluster.ports[0]} --nodes {cluster.size}`)"
        )
    for p in cluster.nodes:
        shutil.rmtree(p.data_dir, ignore_errors=True)
        if logs:
            shutil.rmtree(p.logs_dir, ignore_errors=True)


def start_cluster(
    cluster: DevCluster,
    *,
    heap: str | None = None,
    timeout: float = START_TIMEOUT,
    fresh: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> ClusterStartResult:
    """Start the nodes that do not run and wait until all have joined and health is green or
    yellow. ``fresh`` first wipes the data of a cluster none of whose nodes run."""
    t0 = time.monotonic()
    if cluster.size == 1:
        if fresh:
            wipe(cluster)
        one: StartResult = start(cluster.nodes[0], heap=heap, timeout=timeout, log=log)
        found = health(cluster) or {}
        started = () if one.already_running else (cluster.ports[0],)
        return ClusterStartResult((one.url,), (one.pid,), started, one.seconds, found)
    running = {p.port: running_pid(p) for p in cluster.nodes}
    for p in cluster.nodes:
        if running[p.port] is not None:
            _check_member(p)
    if fresh:
        wipe(cluster)
    watch: dict[int, int] = {}
    try:
        for p in cluster.nodes:
            if running[p.port] is None:
                watch[p.port] = launch(p, heap=heap, ports=cluster.ports, log=log)
        found = wait_cluster(cluster, timeout=timeout, watch=watch, via=tuple(watch) or None)
    except BaseException:  # never leave half a cluster running: stop what this call started
        for p in cluster.nodes:
            if p.port in watch:
                stop(p)
        raise
    pids = tuple(running_pid(p) for p in cluster.nodes)
    return ClusterStartResult(cluster.urls, pids, tuple(watch), time.monotonic() - t0, found)


def stop_cluster(cluster: DevCluster) -> list[bool]:
    """Stop every node xlidx started for the cluster (in parallel); which ones were running."""
    with ThreadPoolExecutor(max_workers=cluster.size) as pool:
        return list(pool.map(stop, cluster.nodes))


def stop_node(cluster: DevCluster, i: int) -> bool:
    """Stop node ``i`` cleanly (SIGTERM); its data stays for :func:`start_node`."""
    return stop(cluster.node(i))


def start_node(
    cluster: DevCluster,
    i: int,
    *,
    heap: str | None = None,
    timeout: float = START_TIMEOUT,
    statuses: tuple[str, ...] = HEALTHY,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Start node ``i`` again (with its data) and wait until every node has joined."""
    paths = cluster.node(i)
    watch = {}
    if running_pid(paths) is None:
        watch[paths.port] = launch(paths, heap=heap, ports=cluster.ports, log=log)
    return wait_cluster(cluster, timeout=timeout, statuses=statuses, watch=watch, via=(paths.port,))


def restart_node(
    cluster: DevCluster,
    i: int,
    *,
    heap: str | None = None,
    timeout: float = START_TIMEOUT,
    statuses: tuple[str, ...] = HEALTHY,
) -> dict[str, Any]:
    """Stop node ``i`` and start it again; returns when the cluster is whole again."""
    stop_node(cluster, i)
    return start_node(cluster, i, heap=heap, timeout=timeout, statuses=statuses)


def kill_node(cluster: DevCluster, i: int, timeout: float = 30.0) -> bool:
    """SIGKILL node ``i`` (a crash: no clean shutdown); False when it was not running."""
    paths = cluster.node(i)
    pid = running_pid(paths)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while pid_alive(pid, paths.spec.main_class) and time.monotonic() < deadline:
        time.sleep(0.1)
    paths.pid_file.unlink(missing_ok=True)  # a killed node leaves its pid file behind
    return True
