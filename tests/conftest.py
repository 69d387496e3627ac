"""Shared fixtures.

Integration tests get a real OpenSearch node from :func:`dev_node` (the one at
``XLIDX_TEST_URL``, else the dev node on ``XLIDX_TEST_PORT``/9200, started if needed) and a
real Elasticsearch node from :func:`es_node` (``XLIDX_TEST_ES_URL``, else the dev node on
``XLIDX_TEST_ES_PORT``/9201). :func:`engine_node` runs a test once per engine: the contract
suite. Under ``CI=true`` a server that cannot be had FAILS the test; elsewhere it skips with
the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from xlidx.config import ConnectionSettings

# model code must never reach a hub from the tests: fail fast instead of hanging
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = [
    "tests.fixtures.embedding",
    "tests.fixtures.translation",
    "tests.fixtures.queue",
    "tests.fixtures.rabbitmq",
    "tests.fixtures.cluster",
]

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parent.parent


def unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI=true and a required server is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``xlidx ARGS`` in a subprocess, exactly as a user would (no connection env leaks in)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
    for keep in ("XLIDX_HOME", "XLIDX_DEV_DIR"):
        if keep in os.environ:
            base[keep] = os.environ[keep]
    base["COLUMNS"] = "200"
    base["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "xlidx", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def _node(engine: str, url_var: str, port_var: str, port: int) -> Iterator[ConnectionSettings]:
    url = os.environ.get(url_var)
    if url:
        yield ConnectionSettings(urls=(url,), engine=engine)
        return
    from xlidx.devnode.node import running_pid, start, stop
    from xlidx.devnode.paths import DevPaths
    from xlidx.errors import XlidxError

    paths = DevPaths.from_env(int(os.environ.get(port_var, str(port))), engine=engine)
    started_here = running_pid(paths) is None
    try:
        res = start(paths)
    except XlidxError as exc:
        unavailable(f"could not start the {engine} dev node: {exc}")
        return
    yield ConnectionSettings(urls=(res.url,), engine=engine)
    if started_here and not res.already_running and not os.environ.get("XLIDX_TEST_KEEP_NODE"):
        stop(paths)


@pytest.fixture(scope="session")
def dev_node() -> Iterator[ConnectionSettings]:
    """Settings for a real, healthy OpenSearch node with the k-NN plugin."""
    yield from _node("opensearch", "XLIDX_TEST_URL", "XLIDX_TEST_PORT", 9200)


@pytest.fixture(scope="session")
def es_node() -> Iterator[ConnectionSettings]:
    """Settings for a real, healthy Elasticsearch node (the 8.x integ-test distribution)."""
    yield from _node("elasticsearch", "XLIDX_TEST_ES_URL", "XLIDX_TEST_ES_PORT", 9201)


ENGINES = ("opensearch", "elasticsearch")


@pytest.fixture(scope="session", params=ENGINES)
def engine_node(
    request: pytest.FixtureRequest, dev_node: ConnectionSettings, es_node: ConnectionSettings
) -> ConnectionSettings:
    """Each real engine in turn: a test that takes this fixture runs once per engine.

    Both nodes are plain dependencies: a node requested with ``getfixturevalue`` here would
    be torn down with this fixture's first parameter, in the middle of the session."""
    return dev_node if request.param == "opensearch" else es_node


def drop_index(settings: ConnectionSettings, name: str) -> None:
    """Delete ``name`` and its versions, whatever the engine (cleanup: errors are ignored)."""
    from xlidx.backends import open_backend
    from xlidx.errors import XlidxError

    try:
        backend = open_backend(settings)
        backend.delete_indices(backend.list_indices(f"{name}*"))
    except XlidxError:
        pass


@pytest.fixture
def index_name(dev_node: ConnectionSettings) -> Iterator[str]:
    """A unique index name, deleted after the test."""
    name = f"xlidx-test-{uuid.uuid4().hex[:10]}"
    yield name
    drop_index(dev_node, name)


def require_binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((f for f in fallbacks if Path(f).is_file()), None)
    if not found:
        unavailable(f"{name} is not installed (scripts/install.sh --test installs it)")
        raise AssertionError  # unreachable: unavailable() fails or skips
    return found
