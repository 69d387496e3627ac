"""`xlidx dev up --with-ml`: the OpenSearch dev node with ml-commons, against the real node.

The remote connector points at OpenAI's URL, which ml-commons trusts by default: registering
and deploying a remote model never calls its endpoint, so no cluster setting is touched here
(the trusted endpoints and private addresses are `xlidx connect`'s to set).
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import free_port, run_cli
from xlidx.config import ConnectionSettings

pytestmark = [pytest.mark.integration, pytest.mark.ml]

DEPLOY_TIMEOUT = 60.0


def _port(settings: ConnectionSettings) -> int:
    port = urlsplit(settings.urls[0]).port
    assert port is not None
    return port


@pytest.fixture
def client(ml_node: ConnectionSettings) -> Iterator[Any]:
    from xlidx.backends.opensearch.client import make_client

    yield make_client(ml_node)


def _ml(client: Any, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """``method path`` on the ml-commons API. Its answers may carry the deprecation header
    "this request accesses system indices" (ml-commons reading its own indices, e.g. for
    ``_plugins/_ml/stats`` now and then), which opensearch-py turns into a warning."""
    from opensearchpy.exceptions import OpenSearchWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "this request accesses system indices", OpenSearchWarning)
        found: dict[str, Any] = client.transport.perform_request(method, path, body=body)
    return found


def test_ml_node_answers_with_ml_commons(client: Any) -> None:
    health = client.cluster.health()
    assert health["status"] in ("green", "yellow")
    plugins = {row["component"] for row in client.cat.plugins(format="json")}
    assert {"opensearch-ml", "opensearch-knn", "opensearch-neural-search"} <= plugins
    stats = _ml(client, "GET", "/_plugins/_ml/stats")
    assert len(stats["nodes"]) == 1
    node = next(iter(stats["nodes"].values()))
    assert node["ml_circuit_breaker_trigger_count"] == 0


def test_remote_model_registers_and_deploys(client: Any) -> None:
    name = f"xlidx-test-{uuid.uuid4().hex[:8]}"
    connector = _ml(
        client,
        "POST",
        "/_plugins/_ml/connectors/_create",
        {
            "name": name,
            "description": "never called: deploying a remote model does not call its endpoint",
            "version": "1",
            "protocol": "http",
            "parameters": {"endpoint": "api.openai.com"},
            "credential": {"key": "unused"},
            "actions": [
                {
                    "action_type": "predict",
                    "method": "POST",
                    "url": "https://api.openai.com/v1/embeddings",
                    "headers": {"content-type": "application/json"},
                    "request_body": '{ "input": ${parameters.input} }',
                }
            ],
        },
    )["connector_id"]
    model = group = None
    try:
        registered = _ml(
            client,
            "POST",
            "/_plugins/_ml/models/_register?deploy=true",
            {"name": name, "function_name": "remote", "connector_id": connector},
        )
        model = registered["model_id"]
        deadline = time.monotonic() + DEPLOY_TIMEOUT
        while True:
            found = _ml(client, "GET", f"/_plugins/_ml/models/{model}")
            group = found.get("model_group_id")
            if found.get("model_state") in ("DEPLOYED", "DEPLOY_FAILED"):
                break
            assert time.monotonic() < deadline, f"not deployed in {DEPLOY_TIMEOUT:.0f}s: {found}"
            time.sleep(0.5)
        assert found["model_state"] == "DEPLOYED", found
        assert found["algorithm"] == "REMOTE" and len(found["planning_worker_nodes"]) == 1
    finally:
        if model is not None:
            _ml(client, "POST", f"/_plugins/_ml/models/{model}/_undeploy")
            _ml(client, "DELETE", f"/_plugins/_ml/models/{model}")
        _ml(client, "DELETE", f"/_plugins/_ml/connectors/{connector}")
        if group is not None:
            _ml(client, "DELETE", f"/_plugins/_ml/model_groups/{group}")


def test_status_and_up_know_the_ml_node(ml_node: ConnectionSettings) -> None:
    port = _port(ml_node)
    proc = run_cli("dev", "status", "--with-ml", "--port", str(port), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["running"] is True and "opensearch-ml" in report["plugins"]
    if os.environ.get("XLIDX_TEST_ML_URL"):
        return  # a node xlidx did not start: the rest is about the one it did
    assert report["with_ml"] is True
    text = run_cli("dev", "status", "--port", str(port))
    assert "ml:       ml-commons (started with --with-ml)" in text.stdout
    for args in (("--with-ml",), ()):  # the node with ml-commons serves both
        up = run_cli("dev", "up", *args, "--port", str(port))
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith(
            f"OpenSearch with ml-commons already running at http://127.0.0.1:{port} (pid "
        ), up.stdout


def test_with_ml_refuses_the_plain_nodes_port(dev_node: ConnectionSettings) -> None:
    """On a port where the node without ml-commons runs, `up --with-ml` says so in one line
    and leaves that node alone."""
    port = _port(dev_node)
    proc = run_cli("dev", "up", "--with-ml", "--port", str(port))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(port) in lines[0], proc.stderr
    if not os.environ.get("XLIDX_TEST_URL"):
        assert "without ml-commons" in lines[0] and "xlidx dev down" in lines[0]
    status = run_cli("dev", "status", "--port", str(port), "--json")
    assert json.loads(status.stdout)["running"] is True


def test_both_installs_side_by_side(ml_node: ConnectionSettings) -> None:
    if os.environ.get("XLIDX_TEST_ML_URL"):
        pytest.skip("XLIDX_TEST_ML_URL names a node xlidx did not install")
    from xlidx.devnode.install import is_installed
    from xlidx.devnode.paths import DevPaths

    ml = DevPaths.from_env(_port(ml_node), ml=True)
    assert is_installed(ml) and (ml.install_dir / "plugins" / "opensearch-ml").is_dir()
    plain = DevPaths.from_env(9200)
    if plain.install_dir.exists():  # installed once by whichever test needed it
        assert not (plain.install_dir / "plugins" / "opensearch-ml").exists()


def test_status_of_a_stopped_ml_node_hints_with_ml() -> None:
    port = free_port()
    proc = run_cli("dev", "status", "--with-ml", "--port", str(port))
    assert proc.returncode == 1
    assert f"(start it with `xlidx dev up --with-ml --port {port}`)" in proc.stdout
