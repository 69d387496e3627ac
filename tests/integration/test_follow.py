"""``xlidx ingest --from-index SRC --index DST --follow`` on both real engines, through the CLI,
the follower a subprocess whose ``--json`` lines the test reads as they come:

* inserts, updates and deletes in SRC reach DST; SIGTERM stops it (143, a summary); changes
  made while it is stopped reach DST after a restart that reads only them (the summary's
  ``read`` and ``read_before`` prove there was no rescan); DST then matches an
  ``ingest --from-index`` made at the end; a second follower is refused in one line;
* ``--since-field``, through the library (:meth:`xlidx.Index.follow`): changes tracked by an
  update time (and the one it cannot see: a document written with an older time);
* a node of its own stopped for 30 s while the follower runs: it waits, and nothing is lost;
* bad input, one line each: SRC missing, DST made with another model, a ``--since-field``
  SRC does not have.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, drop_index, free_port, run_cli, unavailable
from xlidx.backends import open_backend
from xlidx.config import ConnectionSettings
from xlidx.indices.follow_store import STATE_INDEX
from xlidx.pipeline.follow_state import state_ids

pytestmark = pytest.mark.integration

# the node is down for OUTAGE seconds at least (the figure): stopped, then started again
# after OUTAGE_SLEEP; a start takes some 15 s more before the node answers (measured, and
# checked by the test)
OUTAGE = 30
OUTAGE_SLEEP = 15
TEXTS = (
    "The river flooded the old town after three days of heavy rain.",
    "La rivière a inondé la vieille ville après trois jours de fortes pluies.",
    "Der Fluss überschwemmte die Altstadt nach drei Tagen starken Regens.",
)


class Follower:
    """``xlidx ingest --from-index SRC --index DST --follow --json`` in a subprocess."""

    def __init__(self, settings: ConnectionSettings, src: str, dst: str, home: Path,
                 model: Path, *extra: str) -> None:  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}
        env.update({"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(home), "NO_COLOR": "1",
                    "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})  # fmt: skip
        self.args = follow_args(src, dst, model, *extra)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xlidx", *self.args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.polls: list[dict[str, Any]] = []
        self.said: list[str] = []  # stderr, drained as it comes (a full pipe would block it)
        self.readers = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._drain, daemon=True)]  # fmt: skip
        for reader in self.readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        self.said.extend(self.proc.stderr)

    def wait(self, what: Callable[[dict[str, Any]], bool], timeout: float = 180) -> dict[str, Any]:
        """The first poll line from now on for which ``what`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    time.sleep(0.5)
                    said = "".join(self.said)
                    raise AssertionError(
                        f"the follower ended ({self.proc.returncode}): {said}"
                    ) from None
                continue
            self.polls.append(line)
            if line["type"] == "poll" and what(line):
                return line
        raise AssertionError(f"no poll as awaited within {timeout}s: {self.polls[-3:]}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, dict[str, Any], str]:
        """Signal it; its exit status, summary and stderr."""
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)
        for reader in self.readers:
            reader.join(timeout=10)
        stderr = "".join(self.said)
        lines = []
        while not self.lines.empty():
            lines.append(self.lines.get())
        self.polls.extend(line for line in lines if line["type"] == "poll")
        summaries = [line for line in lines if line["type"] == "summary"]
        assert summaries, stderr
        return self.proc.returncode, summaries[-1], stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        for reader in self.readers:
            reader.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def follow_args(src: str, dst: str, model: Path, *extra: str) -> list[str]:
    return ["ingest", "--from-index", src, "--index", dst, "--follow", "--json", "--model",
            str(model), "--languages", "en,fr,de", "--interval", "1s", "--reconcile-every", "1s",
            "--batch-size", "16", *extra]  # fmt: skip


def write(settings: ConnectionSettings, index: str, docs: dict[str, dict[str, Any] | None]) -> None:
    """Index (or, for None, delete) documents of the plain index ``index``."""
    backend = open_backend(settings)
    actions = [
        {"_op_type": "delete", "_index": index, "_id": i} if doc is None
        else {"_index": index, "_id": i, "_source": doc}
        for i, doc in docs.items()
    ]  # fmt: skip
    for ok, item in backend.bulk(actions, chunk_size=500, max_chunk_bytes=10**7, max_retries=0,
                                 initial_backoff=1, max_backoff=1):  # fmt: skip
        assert ok, item


def plain_index(settings: ConnectionSettings, index: str, n: int, **extra: Any) -> dict[str, str]:
    backend = open_backend(settings)
    backend.create_index(index, {"settings": {"number_of_shards": 2, "number_of_replicas": 0}})
    docs = {f"d{i}": {"body": f"{TEXTS[i % 3]} ({i})", **extra} for i in range(n)}
    write(settings, index, dict(docs))
    return {i: d["body"] for i, d in docs.items()}


def contents(settings: ConnectionSettings, index: str) -> dict[str, dict[str, Any]]:
    backend = open_backend(settings)
    backend.refresh(index)
    out = {}
    for h in backend.scan(index):
        src = h["_source"]
        x = src.get("xlidx", {})
        out[h["_id"]] = {"body": src.get("body"), "hash": x.get("content_hash"),
                         "lang": x.get("lang")}  # fmt: skip
    return out


def wait_until(check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError("condition not met in time")


def bodies(settings: ConnectionSettings, index: str) -> dict[str, str]:
    return {i: d["body"] for i, d in contents(settings, index).items()}


@pytest.fixture
def pair(engine_node: ConnectionSettings) -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    src, dst = f"xlidx-test-fsrc-{tag}", f"xlidx-test-fdst-{tag}"
    yield src, dst
    forget(engine_node, src, dst)
    for name in (src, dst, f"{dst}-check"):
        drop_index(engine_node, name)


def forget(settings: ConnectionSettings, src: str, dst: str) -> None:
    backend = open_backend(settings)
    for doc_id in state_ids(src, dst):
        backend.delete_state(STATE_INDEX, doc_id)


def test_inserts_updates_and_deletes_arrive_and_a_restart_resumes(
    engine_node: ConnectionSettings, pair: tuple[str, str], tiny_st_model: Path, tmp_path: Path
) -> None:
    settings, (src, dst) = engine_node, pair
    home = tmp_path / "home"
    expected = plain_index(settings, src, 20)
    first = Follower(settings, src, dst, home, tiny_st_model)
    try:
        first.wait(lambda p: p["total_read"] >= 20 and p["caught_up"])
        second = run_cli(*follow_args(src, dst, tiny_st_model),
                         env={"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(home)})  # fmt: skip
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and second.stderr.startswith(
            f"error: another follower is already keeping {dst} in step with {src} (pid"
        ), second.stderr

        changes: dict[str, dict[str, Any] | None] = {
            "n1": {"body": "A new document about the weather."},
            "n2": {"body": "Un nouveau document sur la pluie."},
            "n3": {"body": "Ein neues Dokument über den Wind."},
            "d0": {"body": "The first document, rewritten."},
            "d1": {"body": "Le deuxième document, réécrit."},
            "d2": None,
            "d3": None,
        }
        write(settings, src, changes)
        expected.update({i: d["body"] for i, d in changes.items() if d is not None})
        for gone in ("d2", "d3"):
            expected.pop(gone)
        wait_until(lambda: bodies(settings, dst) == expected)
        code, summary, stderr = first.stop(signal.SIGTERM)
    finally:
        first.kill()
    assert code == 143 and "Traceback" not in stderr, stderr
    assert summary["interrupted"] and not summary["resumed"]
    assert summary["read"] == 25 and summary["deleted"] == 2, summary  # each version once
    assert "interrupted by SIGTERM" in stderr and "resumes from the checkpoint" in stderr

    # while no follower runs
    later: dict[str, dict[str, Any] | None] = {
        "n4": {"body": "Written while the follower was stopped."},
        "d4": {"body": "Changed while the follower was stopped."},
        "d5": None,
    }
    write(settings, src, later)
    expected.update({"n4": "Written while the follower was stopped.",
                     "d4": "Changed while the follower was stopped."})  # fmt: skip
    expected.pop("d5")
    again = Follower(settings, src, dst, home, tiny_st_model)
    try:
        again.wait(lambda p: p["caught_up"] and p["reconciled"] is not None)
        wait_until(lambda: bodies(settings, dst) == expected)
        code, summary, stderr = again.stop(signal.SIGINT)
    finally:
        again.kill()
    assert code == 130, stderr
    assert summary["resumed"] and summary["read_before"] == 25
    assert summary["read"] == 2 and summary["deleted"] == 1, summary  # no rescan: the 2 changes

    check = run_cli("ingest", "--from-index", src, "--index", f"{dst}-check", "--model",
                    str(tiny_st_model), "--languages", "en,fr,de", "--json",
                    env={"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(home)})  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert contents(settings, dst) == contents(settings, f"{dst}-check")


def test_since_field_tracks_an_update_time_through_the_library(
    engine_node: ConnectionSettings, pair: tuple[str, str], tiny_embedder: Any, tmp_path: Path
) -> None:
    """:meth:`xlidx.Index.follow` in this process, a few polls at a time: each call resumes
    from the checkpoint the last one saved."""
    from xlidx.pipeline.options import IngestOptions
    from xlidx.workflows import Index
    from xlidx.workflows.follow import FollowOptions

    settings, (src, dst) = engine_node, pair
    plain_index(settings, src, 6, updated="2024-01-01T00:00:00Z")
    backend = open_backend(settings)
    backend.refresh(src)  # by --since-field, what a search sees (it does not refresh SRC)
    target = Index(backend, dst)
    options = IngestOptions(languages=("en", "fr", "de"), checkpoints=None)
    follow = FollowOptions(interval=0.1, since_field="updated", reconcile_every=0, polls=1)
    polls: list[Any] = []
    first = target.follow(src, options, follow, embedder=tiny_embedder, on_poll=polls.append,
                          dead_letters=tmp_path / "dead.jsonl")  # fmt: skip
    assert (first.mode, first.read, first.indexed, first.polls) == ("field", 6, 6, 1)
    assert polls[0].caught_up and polls[0].reconciled is not None

    later = "2024-01-02T00:00:00Z"
    write(settings, src, {
        "d0": {"body": "Rewritten, with a later update time.", "updated": later},
        "d9": {"body": "Added, with the same update time.", "updated": later},
        "d2": {"body": TEXTS[2] + " (2)", "updated": "2023-12-31T00:00:00Z"},  # older: missed
        "d1": None,
    })  # fmt: skip
    backend.refresh(src)  # (the index's own refresh, a second later at most)
    second = target.follow(src, options, follow, embedder=tiny_embedder,
                           dead_letters=tmp_path / "dead.jsonl")  # fmt: skip
    assert second.resumed and second.read_before == 6
    assert (second.read, second.indexed, second.deleted) == (2, 2, 1)
    got = bodies(settings, dst)
    assert set(got) == {"d0", "d2", "d3", "d4", "d5", "d9"}
    assert got["d0"] == "Rewritten, with a later update time."


@pytest.fixture(params=["opensearch", "elasticsearch"])
def own_node(request: pytest.FixtureRequest) -> Iterator[tuple[Any, ConnectionSettings]]:
    """A node of its own on a free port, which the test stops and starts again."""
    from xlidx.devnode.node import start, stop
    from xlidx.devnode.paths import DevPaths
    from xlidx.errors import XlidxError

    paths = DevPaths.from_env(free_port(), engine=request.param)
    try:
        node = start(paths, heap="512m")
    except XlidxError as exc:
        unavailable(f"could not start a {request.param} node of its own: {exc}")
        return
    try:
        yield paths, ConnectionSettings(urls=(node.url,), engine=request.param)
    finally:
        stop(paths)


def test_a_node_outage_is_waited_out_and_nothing_is_lost(
    own_node: tuple[Any, ConnectionSettings], tiny_st_model: Path, tmp_path: Path
) -> None:
    from xlidx.devnode.node import start, stop

    paths, settings = own_node
    expected = plain_index(settings, "src", 10)
    follower = Follower(
        settings, "src", "dst", tmp_path / "home", tiny_st_model, "--retry-for", "3m"
    )
    try:
        follower.wait(lambda p: p["total_read"] >= 10 and p["caught_up"])
        before = {f"b{i}": {"body": f"Written just before the outage ({i})."} for i in range(5)}
        write(settings, "src", dict(before))  # the follower may be reading them as the node goes
        assert stop(paths)
        down = time.monotonic()
        time.sleep(OUTAGE_SLEEP)
        start(paths, heap="512m")  # returns once the node is healthy again
        outage = time.monotonic() - down
        after = {f"a{i}": {"body": f"Written after the outage ({i})."} for i in range(5)}
        write(settings, "src", {**after, "d0": None})
        expected.update({i: d["body"] for i, d in {**before, **after}.items()})
        expected.pop("d0")
        wait_until(lambda: bodies(settings, "dst") == expected, timeout=120)
        code, summary, stderr = follower.stop()
    finally:
        follower.kill()
    assert code == 143, stderr
    assert outage >= OUTAGE, outage
    assert "the cluster cannot take requests; waiting up to 3m (--retry-for)" in stderr
    assert "the cluster is back after" in stderr and "Traceback" not in stderr
    assert summary["read"] == 20, [p for p in follower.polls if p["read"]]  # each version once
    assert summary["deleted"] == 1 and summary["dead_lettered"] == 0, summary


def test_bad_input_is_one_line(
    engine_node: ConnectionSettings, pair: tuple[str, str], tiny_st_model: Path, tmp_path: Path
) -> None:
    from xlidx.indices.manage import ensure
    from xlidx.spec import IndexSpec

    settings, (src, dst) = engine_node, pair
    env = {"XLIDX_URL": settings.urls[0], "XLIDX_HOME": str(tmp_path / "home")}

    def one_line(*args: str) -> str:
        proc = run_cli(*args, env=env)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        return lines[0]

    missing = one_line(*follow_args(f"{src}-missing", dst, tiny_st_model))
    assert f"no index '{src}-missing' to follow" in missing
    plain_index(settings, src, 2)
    field = one_line(*follow_args(src, dst, tiny_st_model, "--since-field", "modified"))
    assert f"--since-field modified: {src} has no field 'modified'" in field
    ensure(open_backend(settings), IndexSpec(dst, {"model": "another-model", "dimension": 48}))
    other = one_line(*follow_args(src, dst, tiny_st_model))
    assert "was built with model 'another-model' (48-d); refusing to use" in other
    assert "--follow --queue is not supported" in one_line(
        *follow_args(src, dst, tiny_st_model, "--queue")
    )
