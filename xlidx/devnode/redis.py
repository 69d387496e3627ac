"""A local Redis (Debian's ``redis-server``) for the Celery broker, started beside the dev node.

Bound to 127.0.0.1, with an append-only file under the dev directory so that a restart loses
no queued task.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from xlidx.devnode.node import pid_alive, port_in_use, read_pid, stop_pid
from xlidx.devnode.paths import DevPaths, is_root
from xlidx.errors import DevNodeError

DEFAULT_REDIS_PORT = 6379
_MARKER = "redis-server"


def find_redis_server(install_if_missing: bool = True) -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )
    if found:
        return found
    if install_if_missing and is_root() and shutil.which("apt-get"):
        for cmd in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "redis-server"],
        ):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                raise DevNodeError(f"`{' '.join(cmd)}` failed: {last}")
        return find_redis_server(install_if_missing=False)
    raise DevNodeError(
        "redis-server not found: install it (Debian: apt-get install redis-server) "
        "or point XLIDX_BROKER_URL at a Redis you run"
    )


def ping(port: int, timeout: float = 1.0) -> bool:
    """True when a Redis answers PING on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(paths: DevPaths, port: int = DEFAULT_REDIS_PORT, timeout: float = 20.0) -> bool:
    """Start Redis unless xlidx's is already running. Returns True when it was already up."""
    pid_file = paths.redis_pid_file(port)
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid, _MARKER) and ping(port):
        return True
    if port_in_use(port):
        raise DevNodeError(
            f"port {port} on 127.0.0.1 is taken by a process xlidx did not start; "
            "stop it or pick another port with --redis-port"
        )
    server = find_redis_server()
    data = paths.redis_dir(port)
    data.mkdir(parents=True, exist_ok=True)
    log_file = data / "redis.log"
    cmd = [
        server,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data),
        "--daemonize",
        "yes",
        "--pidfile",
        str(pid_file),
        "--logfile",
        str(log_file),
        "--appendonly",
        "yes",
        "--protected-mode",
        "yes",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if proc.returncode != 0:
        raise DevNodeError(
            f"redis-server failed to start: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(port):
            return False
        time.sleep(0.1)
    tail = log_file.read_text(errors="replace").splitlines()[-5:] if log_file.exists() else []
    raise DevNodeError(f"redis-server on port {port} did not answer PING: {' | '.join(tail)}")


def stop_redis(paths: DevPaths, port: int = DEFAULT_REDIS_PORT) -> bool:
    pid_file = paths.redis_pid_file(port)
    pid = read_pid(pid_file)
    stopped = pid is not None and stop_pid(pid, _MARKER, timeout=20.0)
    pid_file.unlink(missing_ok=True)
    return stopped
