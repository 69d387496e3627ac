"""`xlidx dev up | down | status` against the real dev node and a real redis-server."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.conftest import free_port, require_binary, run_cli
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration


def _port(settings: ConnectionSettings) -> int:
    port = urlsplit(settings.urls[0]).port
    assert port is not None
    return port


def test_status_lists_knn_plugin(dev_node: ConnectionSettings) -> None:
    port = _port(dev_node)
    proc = run_cli("dev", "status", "--port", str(port), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["running"] is True
    assert report["version"].startswith("2.19")
    assert report["health"] in ("green", "yellow")
    assert "opensearch-knn" in report["plugins"]
    assert "opensearch-neural-search" in report["plugins"]

    text = run_cli("dev", "status", "--port", str(port))
    assert text.returncode == 0
    assert "opensearch-knn" in text.stdout and f"http://127.0.0.1:{port}" in text.stdout


def test_up_again_reuses_the_running_node(dev_node: ConnectionSettings) -> None:
    proc = run_cli("dev", "up", "--port", str(_port(dev_node)))
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stdout


def test_language_analyzers_are_installed(dev_node: ConnectionSettings) -> None:
    """analysis-common (assembled from Maven jars) brings the per-language analyzers."""
    from xlidx.backends.opensearch.client import make_client

    client = make_client(dev_node)
    fr = client.indices.analyze(body={"analyzer": "french", "text": "Les chevaux"})
    assert [t["token"] for t in fr["tokens"]] == ["cheval"]
    cjk = client.indices.analyze(body={"analyzer": "cjk", "text": "東京都"})
    assert [t["token"] for t in cjk["tokens"]] == ["東京", "京都"]


def test_status_of_a_stopped_node_exits_1() -> None:
    port = free_port()
    proc = run_cli("dev", "status", "--port", str(port), "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["running"] is False


def test_up_refuses_a_port_taken_by_someone_else() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = run_cli("dev", "up", "--port", str(port))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is taken" in lines[0]


def test_redis_start_status_and_down() -> None:
    """Redis as `dev up --with-redis` starts it (same function), seen by status, stopped by down."""
    require_binary("redis-server", "/usr/bin/redis-server")
    from xlidx.devnode.paths import DevPaths
    from xlidx.devnode.redis import ping, start_redis

    node_port, redis_port = free_port(), free_port()  # no node runs on node_port
    assert start_redis(DevPaths.from_env(node_port), redis_port) is False
    try:
        assert ping(redis_port)
        assert start_redis(DevPaths.from_env(node_port), redis_port) is True  # reused
        status = run_cli(
            "dev", "status", "--port", str(node_port), "--redis-port", str(redis_port), "--json"
        )
        assert json.loads(status.stdout)["redis"]["running"] is True
    finally:
        down = run_cli(
            "dev", "down", "--port", str(node_port), "--with-redis", "--redis-port", str(redis_port)
        )
    assert down.returncode == 0, down.stderr
    assert f"OpenSearch at http://127.0.0.1:{node_port}: was not running" in down.stdout
    assert f"Redis at 127.0.0.1:{redis_port}: stopped" in down.stdout
    assert not ping(redis_port)
