"""Start, stop and probe the local single-node OpenSearch or Elasticsearch.

Which one is ``paths.engine`` (:class:`~xlidx.devnode.paths.DevPaths`). The node binds to
127.0.0.1 only, runs with security off (OpenSearch's integ-test distribution has no security
plugin; Elasticsearch's has x-pack security, switched off), keeps its data and logs under
the dev directory, and records its pid in a pid file. ``stop`` only ever signals a pid from
that file whose command line is the engine's server (its main class).

An OpenSearch node started ``--with-ml`` (``paths.ml``) runs from its own install with
ml-commons, with the plain node's settings plus :data:`~xlidx.devnode.ml.ML_SETTINGS` (none
is needed: see :mod:`xlidx.devnode.ml`); it shares the port-keyed files of any OpenSearch dev
node, and which install a running node came from is read from its command line
(:func:`running_install`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from xlidx.config import child_env
from xlidx.devnode.engines import SPECS, Engine
from xlidx.devnode.install import (
    chown_tree,
    chown_tree_top,
    ensure_node_user,
    find_java_home,
    install,
)
from xlidx.devnode.ml import ML_SETTINGS
from xlidx.devnode.paths import DevPaths, is_root
from xlidx.errors import DevNodeError

DEFAULT_PORTS: dict[Engine, int] = {name: spec.default_port for name, spec in SPECS.items()}
DEFAULT_HEAPS: dict[Engine, str] = {name: spec.default_heap for name, spec in SPECS.items()}
DEFAULT_PORT = DEFAULT_PORTS["opensearch"]
DEFAULT_HEAP = DEFAULT_HEAPS["opensearch"]
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class StartResult:
    url: str
    pid: int
    already_running: bool
    seconds: float
    ml: bool = False  # the node runs from the install with ml-commons


TRANSPORT_OFFSET = 100  # a cluster node's transport port is its HTTP port + this


def transport_port(http_port: int) -> int:
    """The transport port of the cluster node on ``http_port`` (pure): 9200 → 9300."""
    return http_port + TRANSPORT_OFFSET


def cluster_ports(port: int, nodes: int) -> tuple[int, ...]:
    """The HTTP ports of an ``nodes``-node dev cluster whose first node is on ``port``."""
    if nodes < 1:
        raise DevNodeError(f"--nodes must be 1 or more, got {nodes}")
    last = port + nodes - 1
    if port < 1 or (transport_port(last) if nodes > 1 else last) > 65535:
        raise DevNodeError(
            f"ports {port}..{last} (transport: each + 100) do not fit below 65536: pick a "
            "lower --port"
        )
    return tuple(range(port, port + nodes))


def node_name(port: int, ports: Sequence[int] = ()) -> str:
    """``xlidx-dev`` for the single node (as always), ``xlidx-dev-PORT`` in a cluster."""
    return "xlidx-dev" if len(ports) <= 1 else f"xlidx-dev-{port}"


def node_settings(paths: DevPaths, ports: Sequence[int] = ()) -> list[str]:
    """The ``-E`` settings the node starts with (pure).

    ``ports``: the HTTP ports of every node of its cluster (``paths.port`` among them); one
    port or none is the single node (``discovery.type: single-node``). A node of a cluster
    gets its transport port (``transport_port``), the transport ports of all as seed hosts,
    and all node names as the nodes that bootstrap the cluster.
    """
    if len(ports) <= 1:
        shape = [
            "-Ecluster.name=xlidx-dev",
            "-Enode.name=xlidx-dev",
            "-Ediscovery.type=single-node",
        ]
    else:
        if paths.port not in ports:
            raise DevNodeError(f"port {paths.port} is not a node of the cluster {list(ports)}")
        seeds = ",".join(f"127.0.0.1:{transport_port(p)}" for p in ports)
        names = ",".join(node_name(p, ports) for p in ports)
        shape = [
            f"-Ecluster.name=xlidx-dev-{ports[0]}",
            f"-Enode.name={node_name(paths.port, ports)}",
            f"-Etransport.port={transport_port(paths.port)}",
            f"-Ediscovery.seed_hosts={seeds}",
            f"-E{paths.spec.initial_managers_setting}={names}",
        ]
    return [
        *shape,
        "-Enetwork.host=127.0.0.1",
        f"-Ehttp.port={paths.port}",
        f"-Epath.data={paths.data_dir}",
        f"-Epath.logs={paths.logs_dir}",
        # a dev box's disk may be nearly full; never turn the node read-only over it
        "-Ecluster.routing.allocation.disk.threshold_enabled=false",
        *paths.spec.extra_settings,
        *(ML_SETTINGS if paths.ml else ()),
    ]


def node_env(
    paths: DevPaths, java_home: Path, heap: str, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment the start script runs with (pure given ``base``): ``base`` less any
    ``XLIDX_*``, plus the engine's Java home, heap and config directory."""
    spec = paths.spec
    base = child_env() if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith("XLIDX_")}
    if spec.name == "opensearch":
        env["JAVA_HOME"] = str(java_home)
    else:
        env.pop("JAVA_HOME", None)  # Elasticsearch ignores it, with a warning
    env[spec.java_home_env] = str(java_home)
    env[spec.java_opts_env] = f"-Xms{heap} -Xmx{heap}"
    env[spec.path_conf_env] = str(paths.install_dir / "config")
    return env


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None
    return int(text) if text.isdigit() else None


def _cmdline_args(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def _cmdline(pid: int) -> str:
    return " ".join(_cmdline_args(pid))


def pid_alive(pid: int, must_contain: str) -> bool:
    """True when ``pid`` runs (not a zombie) and its command line contains ``must_contain``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    return must_contain in _cmdline(pid)


def http_json(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """GET a JSON document from the dev node; ``None`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback http
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def log_tail(paths: DevPaths, lines: int = 12) -> str:
    """The node's first error lines (what made it fail) and its last lines."""
    for candidate in (paths.logs_dir / "xlidx-dev.log", paths.console_log):
        try:
            text = candidate.read_text(errors="replace").splitlines()
        except OSError:
            continue
        if text:
            errors = [
                ln[:300]
                for ln in text
                if "[ERROR]" in ln or ln.startswith("Caused by") or "Exception:" in ln[:120]
            ][:4]
            tail = [ln[:300] for ln in text[-lines:] if not ln.lstrip().startswith("at ")]
            return "\n".join([*errors, *(["..."] if errors else []), *tail])
    return "(no log written)"


def url_of(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def running_pid(paths: DevPaths) -> int | None:
    """The pid of the node xlidx started for ``paths`` (engine and port), if it runs."""
    pid = read_pid(paths.pid_file)
    if pid is not None and pid_alive(pid, paths.spec.main_class):
        return pid
    return None


def running_install(paths: DevPaths) -> Path | None:
    """The install directory (``-D<engine>.path.home``) of the node xlidx started on
    ``paths``'s port, whichever install that is; ``None`` when none runs."""
    pid = running_pid(paths)
    if pid is None:
        return None
    flag = f"-D{'es' if paths.engine == 'elasticsearch' else 'opensearch'}.path.home="
    for arg in _cmdline_args(pid):
        if arg.startswith(flag):
            return Path(arg[len(flag) :])
    return None


def runs_ml(paths: DevPaths) -> bool:
    """Whether the node running on ``paths``'s port was started ``--with-ml`` (from the
    install with ml-commons)."""
    home = running_install(paths)
    return home is not None and home.name == replace(paths, ml=True).install_name


def _check_variant(paths: DevPaths) -> bool:
    """For a node that runs on ``paths``'s port: whether it has ml-commons. A node without
    it where ``paths.ml`` asks for one is a :class:`DevNodeError` (in one line); a node with
    it serves where the plain node is asked for (it has every plugin that one has)."""
    ml = runs_ml(paths)
    if paths.ml and not ml:
        raise DevNodeError(
            f"{url_of(paths.port)} runs the {paths.spec.display} dev node without ml-commons; "
            f"stop it with `xlidx dev down --port {paths.port}` or pick another port with --port"
        )
    return ml


def start(
    paths: DevPaths,
    *,
    heap: str | None = None,
    timeout: float = START_TIMEOUT,
    log: Callable[[str], None] = lambda _m: None,
) -> StartResult:
    """Install if needed, start the node, and wait for yellow or green health.

    ``heap`` defaults to the engine's (``DEFAULT_HEAPS``: 1g OpenSearch, with ml-commons or
    not; 512m Elasticsearch). A node already running on the port is reused, except one
    without ml-commons where ``paths.ml`` asks for it (:class:`DevNodeError`).
    """
    t0 = time.monotonic()
    url = url_of(paths.port)
    pid = running_pid(paths)
    if pid is not None:
        ml = _check_variant(paths)
        _wait_healthy(paths, pid, timeout, t0)
        return StartResult(url, pid, True, time.monotonic() - t0, ml)
    pid = launch(paths, heap=heap, log=log)
    _wait_healthy(paths, pid, timeout, t0, watch_pid=True)
    pid = read_pid(paths.pid_file) or pid
    return StartResult(url, pid, False, time.monotonic() - t0, paths.ml)


def check_port_free(paths: DevPaths, port: int | None = None) -> None:
    """:class:`DevNodeError` saying who holds ``port`` (default: the node's HTTP port)."""
    port = paths.port if port is None else port
    if not port_in_use(port):
        return
    for other in SPECS:
        other_paths = replace(paths, engine=other)
        if other != paths.engine and running_pid(other_paths) is not None and port == paths.port:
            raise DevNodeError(
                f"port {port} on 127.0.0.1 is taken by the {other_paths.spec.display} "
                f"dev node; stop it with `xlidx dev down --backend {other} "
                f"--port {port}` or pick another port with --port"
            )
    raise DevNodeError(
        f"port {port} on 127.0.0.1 is taken by a process xlidx did not start; "
        "stop it or pick another port with --port"
    )


def launch(
    paths: DevPaths,
    *,
    heap: str | None = None,
    ports: Sequence[int] = (),
    log: Callable[[str], None] = lambda _m: None,
) -> int:
    """Install if needed and launch the node (of the cluster on ``ports``, see
    :func:`node_settings`) without waiting for it; its pid (setpriv's, until the node writes
    its pid file)."""
    spec = paths.spec
    heap = heap or spec.default_heap
    check_port_free(paths)
    if len(ports) > 1:
        check_port_free(paths, transport_port(paths.port))
    install_dir = install(paths, log=log)
    java_home = find_java_home(engine=spec.name)
    for d in (paths.data_dir, paths.logs_dir):
        d.mkdir(parents=True, exist_ok=True)
    paths.pid_file.unlink(missing_ok=True)

    cmd = [
        str(install_dir / spec.launcher),
        "-p",
        str(paths.pid_file),
        *node_settings(paths, ports),
    ]
    if is_root():
        user = ensure_node_user(spec.name)
        if len(ports) > 1:  # only its own files: the other nodes of the cluster are running
            for tree in (install_dir, paths.data_dir, paths.logs_dir):
                chown_tree(tree, user)
            chown_tree_top(paths.node_dir, user)
        else:
            chown_tree(paths.node_dir, user)
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *cmd]
    env = node_env(paths, java_home, heap)
    log(f"starting {paths.display} on {url_of(paths.port)} (heap {heap})")
    return spawn_detached(cmd, env=env, cwd=install_dir, output=paths.console_log)


def spawn_detached(cmd: list[str], *, env: dict[str, str], cwd: Path, output: Path) -> int:
    """Start ``cmd`` in its own session, orphaned (no child left to reap), output to a file.

    Returns its pid. A shell forks it in the background and exits at once, so the node
    outlives this process and no ``Popen`` object is left waiting on it.
    """
    proc = subprocess.run(
        ["sh", "-c", '"$@" >>"$XLIDX_CONSOLE_LOG" 2>&1 </dev/null & echo $!', "sh", *cmd],
        env={**env, "XLIDX_CONSOLE_LOG": str(output)},
        cwd=cwd,
        capture_output=True,
        text=True,
        start_new_session=True,
        check=False,
    )
    pid_text = proc.stdout.strip()
    if proc.returncode != 0 or not pid_text.isdigit():
        raise DevNodeError(f"could not launch {cmd[0]}: {proc.stderr.strip() or 'no pid'}")
    return int(pid_text)


def _wait_healthy(
    paths: DevPaths, pid: int, timeout: float, t0: float, *, watch_pid: bool = False
) -> None:
    url = url_of(paths.port)
    name = paths.spec.display
    while True:
        health = http_json(f"{url}/_cluster/health")
        if health is not None and health.get("status") in ("green", "yellow"):
            return
        if watch_pid and not pid_alive(pid, ""):
            raise DevNodeError(f"{name} exited during startup. Last log lines:\n{log_tail(paths)}")
        if time.monotonic() - t0 > timeout:
            raise DevNodeError(
                f"{name} on {url} (pid {pid}) was not healthy after {timeout:.0f}s. "
                f"Last log lines:\n{log_tail(paths)}"
            )
        time.sleep(0.5)


def stop_pid(pid: int, marker: str, timeout: float = 60.0) -> bool:
    """SIGTERM ``pid`` (only if it is the expected program), SIGKILL after ``timeout``."""
    if not pid_alive(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return True


def stop(paths: DevPaths) -> bool:
    """Stop the node xlidx started for ``paths`` (engine and port). False when none was."""
    pid = read_pid(paths.pid_file)
    stopped = pid is not None and stop_pid(pid, paths.spec.main_class)
    paths.pid_file.unlink(missing_ok=True)
    return stopped
