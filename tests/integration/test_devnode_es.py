"""`xlidx dev up | status | down --backend elasticsearch` against a real Elasticsearch node
(Maven Central's integ-test-zip), alone and beside the OpenSearch dev node.

Each Elasticsearch start costs 10-50 s, so there are two: one for the command-line life cycle,
one for both engines at once.
"""

from __future__ import annotations

import json
import shutil
from urllib.parse import urlsplit

import pytest

from tests.conftest import free_port, run_cli, unavailable
from xlidx.config import ConnectionSettings
from xlidx.devnode.paths import DevPaths

pytestmark = pytest.mark.integration

ES = ("--backend", "elasticsearch")
START_TIMEOUT = 300.0  # the first start downloads 97 MB and unpacks it


def _up(port: int) -> None:
    proc = run_cli("dev", "up", *ES, "--port", str(port), timeout=START_TIMEOUT + 30)
    if proc.returncode != 0:
        run_cli("dev", "down", *ES, "--port", str(port))
        unavailable(f"could not start the Elasticsearch dev node: {proc.stderr.strip()}")
    assert proc.stdout.startswith("Elasticsearch started in "), proc.stdout
    assert f"at http://127.0.0.1:{port} (pid " in proc.stdout


def _forget(port: int) -> None:
    """Remove the data and logs of a node that ran on a throwaway port (after `down`)."""
    paths = DevPaths.from_env(port, engine="elasticsearch")
    for d in (paths.data_dir, paths.logs_dir):
        shutil.rmtree(d, ignore_errors=True)


def _status(*args: str) -> dict[str, object]:
    proc = run_cli("dev", "status", *args, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def test_es_dev_node_up_status_down() -> None:
    port = free_port()
    _up(port)
    try:
        report = _status(*ES, "--port", str(port))
        assert report["running"] is True and report["started_by_xlidx"] is True
        assert report["backend"] == "elasticsearch"
        assert report["distribution"] == "elasticsearch"
        assert str(report["version"]).startswith("8.19")
        assert report["health"] in ("green", "yellow")

        text = run_cli("dev", "status", *ES, "--port", str(port))
        assert text.returncode == 0
        assert f"http://127.0.0.1:{port}" in text.stdout and "elasticsearch 8.19" in text.stdout

        again = run_cli("dev", "up", *ES, "--port", str(port))
        assert again.returncode == 0, again.stderr
        assert f"Elasticsearch already running at http://127.0.0.1:{port}" in again.stdout

        # the OpenSearch side of xlidx does not claim (or stop) the Elasticsearch node
        os_down = run_cli("dev", "down", "--port", str(port))
        assert f"OpenSearch at http://127.0.0.1:{port}: was not running" in os_down.stdout
        taken = run_cli("dev", "up", "--port", str(port))
        assert taken.returncode == 1
        assert "taken by the Elasticsearch dev node" in taken.stderr
    finally:
        down = run_cli("dev", "down", *ES, "--port", str(port))
    assert down.returncode == 0, down.stderr
    assert f"Elasticsearch at http://127.0.0.1:{port}: stopped" in down.stdout
    _forget(port)

    stopped = run_cli("dev", "status", *ES, "--port", str(port))
    assert stopped.returncode == 1
    assert stopped.stdout.strip() == (
        f"Elasticsearch dev node at http://127.0.0.1:{port}: not running "
        f"(start it with `xlidx dev up --backend elasticsearch --port {port}`)"
    )


def test_both_engines_at_once(dev_node: ConnectionSettings) -> None:
    url = urlsplit(dev_node.urls[0])
    if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
        pytest.skip(f"XLIDX_TEST_URL={dev_node.urls[0]} is not a dev node on this machine")
    os_port = url.port
    es_port = free_port()
    _up(es_port)
    try:
        es = _status(*ES, "--port", str(es_port))
        opensearch = _status("--port", str(os_port))
        assert es["distribution"] == "elasticsearch" and es["running"] is True
        assert opensearch["distribution"] == "opensearch" and opensearch["running"] is True
        assert es["pid"] != opensearch["pid"]
    finally:
        down = run_cli("dev", "down", *ES, "--port", str(es_port))
    assert "stopped" in down.stdout
    _forget(es_port)
    assert _status("--port", str(os_port))["running"] is True  # OpenSearch untouched


def test_status_of_a_stopped_es_node_exits_1() -> None:
    port = free_port()
    proc = run_cli("dev", "status", *ES, "--port", str(port), "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["running"] is False and report["backend"] == "elasticsearch"
