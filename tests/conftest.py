"""Shared fixtures.

Integration tests get a real OpenSearch node from :func:`dev_node` (the one at
``XLIDX_TEST_URL``, else the dev node on ``XLIDX_TEST_PORT``/9200, started if needed). Under
``CI=true`` a server that cannot be had FAILS the test; elsewhere it skips with the reason.
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


@pytest.fixture(scope="session")
def dev_node() -> Iterator[ConnectionSettings]:
    """Settings for a real, healthy OpenSearch node with the k-NN plugin."""
    url = os.environ.get("XLIDX_TEST_URL")
    if url:
        yield ConnectionSettings(urls=(url,))
        return
    from xlidx.devnode.node import running_pid, start, stop
    from xlidx.devnode.paths import DevPaths
    from xlidx.errors import XlidxError

    paths = DevPaths.from_env(int(os.environ.get("XLIDX_TEST_PORT", "9200")))
    started_here = running_pid(paths) is None
    try:
        res = start(paths)
    except XlidxError as exc:
        unavailable(f"could not start the dev node: {exc}")
        return
    yield ConnectionSettings(urls=(res.url,))
    if started_here and not res.already_running and not os.environ.get("XLIDX_TEST_KEEP_NODE"):
        stop(paths)


@pytest.fixture
def index_name(dev_node: ConnectionSettings) -> Iterator[str]:
    """A unique index name, deleted after the test."""
    from xlidx.backends.opensearch import make_client

    name = f"xlidx-test-{uuid.uuid4().hex[:10]}"
    yield name
    make_client(dev_node).indices.delete(index=name, ignore_unavailable=True)


def require_binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((f for f in fallbacks if Path(f).is_file()), None)
    if not found:
        unavailable(f"{name} is not installed (scripts/install.sh --test installs it)")
        raise AssertionError  # unreachable: unavailable() fails or skips
    return found
