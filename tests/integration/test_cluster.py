"""A real 3-node cluster of each engine (``xlidx dev up --nodes 3``) losing nodes under load.

One scenario per engine, on indices made with ``xlidx index create --shards 3 --replicas 1``
and ``XLIDX_URL`` listing all three nodes (one cluster start per engine is most of the cost,
so the steps share it):

1. an in-process ``xlidx ingest`` and a queued ``xlidx ingest --queue --wait`` (real Redis,
   real workers) run at once; a node holding primaries is SIGKILLed in the middle of both.
   Both exit 0 with every document once and no dead letters;
2. then a rolling restart while ``xlidx query`` runs in a loop: the killed node is started
   again, then each other node is stopped and started, each time waiting until all three
   have joined and health is green. Every query answers, or fails with one line after its
   retries, never a traceback.
"""

from __future__ import annotations

import itertools
import json
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


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xlidx", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO, env=process_env(env),
    )  # fmt: skip


def _finished(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    summary: dict[str, Any] = json.loads(stdout)
    return summary


def _query_loop(env: dict[str, str], index: str, stop: threading.Event, results: list[Any]) -> None:
    argv = ["query", "river", "--index", index, "--json", "--k", "5", "--query-lang", "en"]
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            proc = run_cli(*argv, env=env, timeout=120, subprocess=True)  # from a thread
        except subprocess.TimeoutExpired:  # a hung query: what the test is there to catch
            results.append((-1, "", "Traceback: the query hung for 120 s", 120.0))
            continue
        results.append((proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0))


def _assert_queries(results: list[Any]) -> None:
    """Every query answered, or failed with one line after its retries (never a traceback)."""
    for code, stdout, stderr, _took in results:
        assert "Traceback" not in stderr, stderr
        for line in stderr.splitlines():
            assert line.startswith(("retrying the query in", "error: ")), line
        if code == 0:
            assert json.loads(stdout)["hits"], stdout
        else:  # only a retryable failure, after its retries, in one line
            assert code == 1, stderr
            lines = [ln for ln in stderr.splitlines() if not ln.startswith("retrying the query")]
            assert len(lines) == 1 and "gave up after" in lines[0], stderr
    assert len(results) >= 3
    assert sum(r[0] == 0 for r in results) >= 0.8 * len(results)


def test_a_node_lost_under_load_then_a_rolling_restart_under_queries(
    cluster: Cluster,
    workers: Workers,
    queue_env: dict[str, str],
    tiny_st_model: Path,
    tmp_path: Path,
) -> None:
    from xlidx.jobs.store import JobStore

    inproc, queued = "cluster-inproc", "cluster-queued"
    n_in, n_q = 2000, 400
    env = {**queue_env, "XLIDX_URL": cluster.url_env}
    workers.env = env
    t0 = time.monotonic()
    procs: list[subprocess.Popen[str]] = []
    results: list[Any] = []
    stop = threading.Event()
    loop = threading.Thread(target=_query_loop, args=(env, inproc, stop, results))
    try:
        create_index(cluster, inproc, tiny_st_model, env)
        create_index(cluster, queued, tiny_st_model, env)
        workers.xlidx("translate,embed,write", concurrency=2)
        print(f"\n{cluster.engine}: indices and worker ready in {time.monotonic() - t0:.1f}s")
        procs.append(_start(
            ["ingest", str(corpus(tmp_path / "a.jsonl", n_in)), "--index", inproc, "--model",
             str(tiny_st_model), "--device", "cpu", "--batch-size", "50", "--json",
             "--no-progress"], env,
        ))  # fmt: skip
        wait_count(cluster, inproc, 50, lambda: procs[0].poll() is not None)
        procs.append(_start(
            ["ingest", str(corpus(tmp_path / "b.jsonl", n_q)), "--index", queued, "--queue",
             "--wait", "--json", "--batch-size", "20"], env,
        ))  # fmt: skip
        store = JobStore(env["XLIDX_BROKER_URL"])
        deadline = time.monotonic() + 240
        while True:  # both under way
            jobs = store.recent_jobs(1)
            if jobs and jobs[0].batches_done >= 3:
                break
            for p in procs:
                assert p.poll() is None, p.communicate()[1]
            assert time.monotonic() < deadline, "the queued ingest did not get under way in 240s"
            time.sleep(0.1)
        assert all(p.poll() is None for p in procs), "an ingest ended before the kill"
        victim = cluster.victim(f"{inproc}-v1")
        cluster.kill(victim)
        print(f"killed node {victim} at {time.monotonic() - t0:.1f}s")
        one, two = (_finished(p) for p in procs)
        print(f"ingests done at {time.monotonic() - t0:.1f}s")
        assert one["indexed"] == n_in and one["dead_lettered"] == 0, one
        assert two["indexed"] + two["unchanged"] == n_q and two["dead_lettered"] == 0, two
        assert_exactly(cluster, inproc, n_in)
        assert_exactly(cluster, queued, n_q)
        listed = run_cli(
            "deadletters", "list", "--index", queued, "--jsonl", env=env, subprocess=True
        )
        assert listed.returncode == 0 and listed.stdout.strip() == "", listed.stderr

        loop.start()
        restarts = [time.monotonic()]
        cluster.start(victim)  # the lost node comes back: all three joined, green
        for i in (i for i in range(3) if i != victim):
            restarts.append(time.monotonic())
            cluster.stop(i)
            cluster.start(i)
        restarts.append(time.monotonic())
        deadline = time.monotonic() + 60
        while len(results) < 3 and time.monotonic() < deadline:  # queries are slow here
            time.sleep(0.5)
    finally:
        stop.set()
        if loop.is_alive():
            loop.join(timeout=180)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        workers.stop_all()
        cluster.heal()
        open_backend(cluster.settings()).delete_indices([f"{inproc}-v1", f"{queued}-v1"])
    steps = [round(b - a, 1) for a, b in itertools.pairwise(restarts)]
    retries = sum(r[2].count("retrying the query") for r in results)
    print(
        f"{cluster.engine}: restarts took {steps}s; {len(results)} queries, "
        f"{sum(r[0] == 0 for r in results)} answered, {retries} retries; slowest "
        f"{max(r[3] for r in results):.1f}s; all done at {time.monotonic() - t0:.1f}s"
    )
    _assert_queries(results)
