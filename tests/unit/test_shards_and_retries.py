"""Shards and replicas in the index body (both engines), and the retry policy of queries."""

from __future__ import annotations

from typing import Any

import pytest

from xlidx.backends.elasticsearch.mapping import index_body as es_index_body
from xlidx.backends.opensearch.mapping import index_body as os_index_body
from xlidx.errors import AuthenticationFailed, BackendError, ConfigError, ConnectionFailed
from xlidx.search.retry import QueryUnavailable, backoff, retryable, with_retries
from xlidx.spec import IndexSpec, shards_of

EMB = {"model": "tiny", "dimension": 8, "similarity": "cosine"}


def _spec(**more: Any) -> IndexSpec:
    return IndexSpec(name="docs", embedding=EMB, **more)


@pytest.mark.parametrize("render", [os_index_body, es_index_body])
def test_default_is_one_shard_no_replica(render: Any) -> None:
    index = render(_spec(), xlidx_version="9")["settings"]["index"]
    assert index["number_of_shards"] == 1 and index["number_of_replicas"] == 0


def test_shards_and_replicas_land_in_the_body() -> None:
    spec = _spec(shards=3, replicas=1)
    assert os_index_body(spec, xlidx_version="9")["settings"]["index"] == {
        "knn": True,
        "number_of_shards": 3,
        "number_of_replicas": 1,
    }
    assert es_index_body(spec, xlidx_version="9")["settings"]["index"] == {
        "number_of_shards": 3,
        "number_of_replicas": 1,
    }
    only_replicas = es_index_body(_spec(replicas=2), xlidx_version="9")["settings"]["index"]
    assert only_replicas == {"number_of_shards": 1, "number_of_replicas": 2}


@pytest.mark.parametrize(
    ("shards", "replicas", "flag"),
    [(0, None, "--shards"), (-1, 0, "--shards"), (1, -1, "--replicas"), (True, 0, "--shards")],
)
def test_bad_shards_or_replicas(shards: Any, replicas: Any, flag: str) -> None:
    with pytest.raises(ConfigError, match=f"^{flag} must be an integer of"):
        _spec(shards=shards, replicas=replicas)


def test_shards_of_reads_both_settings_forms() -> None:
    assert shards_of({"index": {"number_of_shards": "3", "number_of_replicas": "1"}}) == (3, 1)
    assert shards_of({"index.number_of_shards": "2"}) == (2, None)
    assert shards_of({}) == (None, None)


def test_bad_shards_on_the_command_line_is_one_line() -> None:
    from tests.conftest import run_cli

    proc = run_cli("--url", "http://127.0.0.1:9", "index", "create", "x", "--shards", "0")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --shards must be an integer of 1 or more, got 0"


def test_what_a_query_retries() -> None:
    assert retryable(ConnectionFailed("cannot connect"))
    assert retryable(BackendError("busy", status=429))
    assert retryable(BackendError("all shards failed", status=503))
    assert retryable(
        BackendError(
            "failed",
            status=400,
            details={"error": {"root_cause": [{"type": "no_shard_available_action_exception"}]}},
        )
    )
    assert not retryable(BackendError("all shards failed: query_shard_exception", status=400))
    assert not retryable(BackendError("no such index", status=404))
    assert not retryable(AuthenticationFailed("no", status=401))
    assert not retryable(ValueError("x"))
    assert not retryable(BackendError("search_phase_execution_exception", status=500))
    assert not retryable(QueryUnavailable("gave up", status=503))  # never retried twice
    assert [backoff(n) for n in (1, 2, 3, 6, 10)] == [0.2, 0.4, 0.8, 5.0, 5.0]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_with_retries_recovers_and_reports_each_retry() -> None:
    clock = Clock()
    outcomes: list[Any] = [ConnectionFailed("refused"), BackendError("x", status=503), "hits"]
    seen: list[tuple[int, float]] = []

    def call() -> Any:
        got = outcomes.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    result = with_retries(
        call,
        budget=30,
        on_retry=lambda n, w, _e: seen.append((n, w)),
        sleep=clock.sleep,
        clock=clock,
    )
    assert result == "hits" and seen == [(1, 0.2), (2, 0.4)]


def test_with_retries_gives_up_with_one_line_after_the_budget() -> None:
    clock = Clock()
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionFailed("cannot connect to http://a:1 to search docs: refused")

    with pytest.raises(QueryUnavailable) as e:
        with_retries(call, budget=10, sleep=clock.sleep, clock=clock)
    assert "\n" not in str(e.value) and e.value.exit_code == 1
    assert str(e.value).startswith("cannot connect to http://a:1 to search docs: refused (gave up")
    assert f"after {calls} tries in" in str(e.value) and "--retry-for" in str(e.value)
    assert clock.now <= 10


def test_with_retries_does_not_retry_a_bad_query() -> None:
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        raise BackendError("parse error", status=400)

    with pytest.raises(BackendError, match="parse error"):
        with_retries(call, budget=30, sleep=lambda _s: None)
    assert calls == 1
