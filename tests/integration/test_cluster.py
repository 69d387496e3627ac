"""A real 3-node cluster of each engine (``xlidx dev up --nodes 3``) losing nodes under load.

* ``xlidx index create --shards 3 --replicas 1`` lands its settings; an in-process
  ``xlidx ingest`` listing all three nodes in ``XLIDX_URL`` survives a node holding primaries
  being SIGKILLed mid-run: exit 0, every document once, no dead letters;
* a rolling restart (stop, start, green, one node at a time) while ``xlidx query`` runs in a
  loop: every query answers, or fails with one line after its retries, never a traceback;
* the queued variant of the first: ``xlidx ingest --queue --wait`` with real workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli
from tests.fixtures.cluster import Cluster
from tests.fixtures.queue import Workers, process_env
from xlidx.backends import open_backend

pytestmark = pytest.mark.integration

SENTENCES = (
    "The river flooded the old town after three days of heavy rain.",
    "La rivière a inondé la vieille ville après trois jours de fortes pluies.",
    "Der Fluss überschwemmte die Altstadt nach drei Tagen starken Regens.",
)


def corpus(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = {"id": f"d{i}", "body": f"{SENTENCES[i % 3]} ({i})"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def create_index(cluster: Cluster, name: str, model: Path, env: dict[str, str]) -> None:
    proc = run_cli(
        "index", "create", name, "--model", str(model), "--device", "cpu", "--shards", "3",
        "--replicas", "1", "--json", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    backend = open_backend(cluster.settings())
    settings = backend.index_settings(f"{name}-v1")["index"]
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("3", "1")
    cluster.wait()  # every replica assigned


def ids_in(cluster: Cluster, index: str) -> list[str]:
    backend = open_backend(cluster.settings())
    backend.refresh(index)
    return [h["_id"] for h in backend.scan(index, source=["xlidx.id"])]


def count(cluster: Cluster, index: str) -> int:
    try:
        backend = open_backend(cluster.settings())
        backend.refresh(index)
        return backend.count(index)
    except Exception:  # a node just went away: try again
        return -1


def wait_count(cluster: Cluster, index: str, at_least: int, done: Callable[[], bool]) -> int:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        n = count(cluster, index)
        if n >= at_least:
            return n
        assert not done(), f"the ingest ended before {index} had {at_least} documents"
        time.sleep(0.2)
    raise AssertionError(f"{index} never reached {at_least} documents")


def assert_exactly(cluster: Cluster, index: str, n: int) -> None:
    ids = ids_in(cluster, index)
    assert len(ids) == len(set(ids)) == n, (len(ids), len(set(ids)))
    assert set(ids) == {f"d{i}" for i in range(n)}


def test_sigkill_a_node_mid_ingest_every_document_once(
    cluster: Cluster, tiny_st_model: Path, tmp_path: Path
) -> None:
    n = 2000
    index = "cluster-kill"
    env = {"XLIDX_URL": cluster.url_env, "XLIDX_HOME": str(tmp_path / "home")}
    t0 = time.monotonic()
    create_index(cluster, index, tiny_st_model, env)
    print(f"\ncreated in {time.monotonic() - t0:.1f}s")
    src = corpus(tmp_path / "docs.jsonl", n)
    base = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xlidx", "ingest", str(src), "--index", index, "--model",
         str(tiny_st_model), "--device", "cpu", "--batch-size", "50", "--json", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**base, **env, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    try:
        killed_at = wait_count(cluster, index, n // 5, lambda: proc.poll() is not None)
        victim = cluster.victim(f"{index}-v1")
        print(f"kill node {victim} at {time.monotonic() - t0:.1f}s")
        cluster.kill(victim)
        stdout, stderr = proc.communicate(timeout=600)
        print(f"ingest done at {time.monotonic() - t0:.1f}s, {killed_at} before the kill")
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        summary = json.loads(stdout)
        assert summary["indexed"] == n and summary["dead_lettered"] == 0, summary
        assert killed_at < n, "the ingest had finished before the node was killed"
        assert_exactly(cluster, index, n)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.heal()
        print(f"healed at {time.monotonic() - t0:.1f}s")
        open_backend(cluster.settings()).delete_indices([f"{index}-v1"])


def _query_loop(env: dict[str, str], index: str, stop: threading.Event, results: list[Any]) -> None:
    argv = ["query", "river", "--index", index, "--json", "--k", "5", "--query-lang", "en"]
    while not stop.is_set():
        t0 = time.monotonic()
        proc = run_cli(*argv, env=env, timeout=120)
        results.append((proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0))


def test_rolling_restart_every_query_answers_or_fails_in_one_line(
    cluster: Cluster, tiny_st_model: Path, tmp_path: Path
) -> None:
    index = "cluster-rolling"
    env = {"XLIDX_URL": cluster.url_env, "XLIDX_HOME": str(tmp_path / "home")}
    create_index(cluster, index, tiny_st_model, env)
    src = corpus(tmp_path / "docs.jsonl", 300)
    proc = run_cli(
        "ingest", str(src), "--index", index, "--model", str(tiny_st_model), "--device", "cpu",
        "--json", "--no-progress", env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results: list[Any] = []
    stop = threading.Event()
    loop = threading.Thread(target=_query_loop, args=(env, index, stop, results))
    loop.start()
    restarts: list[float] = []
    try:
        for i in range(3):
            t0 = time.monotonic()
            cluster.stop(i)
            cluster.start(i)  # returns when all three have joined and health is green
            restarts.append(round(time.monotonic() - t0, 1))
        deadline = time.monotonic() + 60
        while len(results) < 3 and time.monotonic() < deadline:  # queries are slow here
            time.sleep(0.5)
    finally:
        stop.set()
        loop.join(timeout=180)
        cluster.heal()
        open_backend(cluster.settings()).delete_indices([f"{index}-v1"])
    answered = [r for r in results if r[0] == 0]
    failed = [r for r in results if r[0] != 0]
    retries = sum(r[2].count("retrying the query") for r in results)
    print(
        f"\n{cluster.engine}: restarts took {restarts}s; {len(results)} queries, "
        f"{len(answered)} answered, {len(failed)} failed, {retries} retries; slowest "
        f"{max(r[3] for r in results):.1f}s"
    )
    for code, stdout, stderr, _took in results:
        assert "Traceback" not in stderr, stderr
        if code == 0:
            assert json.loads(stdout)["hits"], stdout
        else:  # only a retryable failure, after its retries, in one line
            assert code == 1, stderr
            lines = [ln for ln in stderr.splitlines() if not ln.startswith("retrying the query")]
            assert len(lines) == 1 and "gave up after" in lines[0], stderr
    for _code, _stdout, stderr, _took in results:
        for line in stderr.splitlines():
            assert line.startswith(("retrying the query in", "error: ")), line
    assert len(results) >= 3
    assert len(answered) >= 0.8 * len(results)


def test_sigkill_a_node_mid_queued_ingest_every_document_once(
    cluster: Cluster,
    workers: Workers,
    queue_env: dict[str, str],
    tiny_st_model: Path,
    tmp_path: Path,
) -> None:
    from xlidx.jobs.store import JobStore

    n = 300
    index = "cluster-queued"
    env = {**queue_env, "XLIDX_URL": cluster.url_env}
    workers.env = env
    t0 = time.monotonic()
    create_index(cluster, index, tiny_st_model, env)
    workers.xlidx("translate,embed,write", concurrency=2)
    print(f"\nindex and worker ready in {time.monotonic() - t0:.1f}s")
    src = corpus(tmp_path / "docs.jsonl", n)
    argv = [sys.executable, "-m", "xlidx", "ingest", str(src), "--index", index, "--queue",
            "--wait", "--json", "--batch-size", "20"]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env=process_env(env),
    )  # fmt: skip
    try:
        store = JobStore(env["XLIDX_BROKER_URL"])
        deadline = time.monotonic() + 180
        while True:
            jobs = store.recent_jobs(1)
            if jobs and jobs[0].batches_done >= 3:
                break
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no batch written within 180s"
            time.sleep(0.1)
        print(f"kill at {time.monotonic() - t0:.1f}s")
        cluster.kill(cluster.victim(f"{index}-v1"))
        stdout, stderr = proc.communicate(timeout=600)
        print(f"ingest done at {time.monotonic() - t0:.1f}s")
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        summary = json.loads(stdout)
        assert summary["indexed"] + summary["unchanged"] == n, summary
        assert summary["dead_lettered"] == 0, summary
        assert_exactly(cluster, index, n)
        listed = run_cli("deadletters", "list", "--index", index, "--jsonl", env=env)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.strip() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        workers.stop_all()
        cluster.heal()
        print(f"healed at {time.monotonic() - t0:.1f}s")
        open_backend(cluster.settings()).delete_indices([f"{index}-v1"])
