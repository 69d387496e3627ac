"""The service's pure parts: model names, settings, error statuses, the batcher (with a fake
model function), the search answer's round trip, and the client's settings."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from xlidx.errors import (
    BackendError,
    ConfigError,
    IndexNotFound,
    MappingError,
    ModelError,
    ServiceError,
)
from xlidx.serve.app import TooLarge, check_size, status_of
from xlidx.serve.batching import Batcher, Overloaded
from xlidx.serve.server import warnings
from xlidx.serve.service import NotServed, Target, parse_target
from xlidx.serve.settings import ServeSettings

S = ServeSettings(model="/models/e5-small", indices=("news",))
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - what the warning is about


def test_model_names_resolve_to_an_index_role_or_the_model() -> None:
    assert parse_target("xlidx/news:query", None, S) == Target("xlidx/news:query", "news", "query")
    assert parse_target("xlidx/docs", "search", S) == Target("xlidx/docs:query", "docs", "query")
    assert parse_target("xlidx/docs", None, S).role == "passage"
    assert parse_target("e5-small", "search", S) == Target("e5-small:query", None, "query")
    assert parse_target("/models/e5-small", None, S) == Target("e5-small:passage", None, "passage")
    assert parse_target(None, None, S).index is None  # the --model first
    assert parse_target(None, "search", ServeSettings(indices=("news",))).key == "xlidx/news:query"
    with pytest.raises(NotServed, match="'gpt-9' is not served here: use e5-small or xlidx/"):
        parse_target("gpt-9", None, S)
    with pytest.raises(NotServed, match="no default"):
        parse_target(None, None, ServeSettings())
    with pytest.raises(ConfigError, match="unknown role 'sideways'"):
        parse_target("xlidx/news:sideways", None, S)
    with pytest.raises(ConfigError, match="is the query role, but input_type is 'ingest'"):
        parse_target("xlidx/news:query", "ingest", S)
    with pytest.raises(ConfigError, match="invalid index name"):
        parse_target("xlidx/News", None, S)


def test_settings_are_checked(tmp_path: Path) -> None:
    for kw, message in (
        ({"port": 0}, "--port must be between"),
        ({"max_batch": 0}, "--max-batch must be at least 1"),
        ({"max_items": 10, "max_queued": 5}, "must not pass --max-queued"),
        ({"ssl_certfile": tmp_path / "c.pem"}, "TLS needs both"),
        ({"ssl_certfile": tmp_path / "c.pem", "ssl_keyfile": tmp_path / "k.pem"}, "not found"),
        ({"api_keys": ("",)}, "an API key is empty"),
        ({"max_wait_ms": -1}, "--max-wait-ms must be 0 or more"),
    ):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            ServeSettings(**kw)  # type: ignore[arg-type]
    assert ServeSettings().loopback and ServeSettings(host="localhost").loopback
    assert not ServeSettings(host=ANY_ADDRESS).loopback
    assert warnings(ServeSettings()) == []
    assert warnings(ServeSettings(host=ANY_ADDRESS, api_keys=("k",))) == []
    assert "no API key" in warnings(ServeSettings(host=ANY_ADDRESS))[0]
    assert "sekrit" not in repr(ServeSettings(api_keys=("sekrit",)))


def test_statuses() -> None:
    assert status_of(TooLarge("x")) == 413
    assert status_of(Overloaded("q", 1.0)) == 429 and status_of(NotServed("x")) == 404
    assert status_of(IndexNotFound("x")) == 404 and status_of(MappingError("x")) == 409
    assert status_of(ConfigError("x")) == 400 and status_of(ModelError("x")) == 400
    assert status_of(BackendError("x", status=503)) == 503
    assert status_of(BackendError("x", status=400)) == 502
    assert status_of(RuntimeError("x")) == 500
    with pytest.raises(TooLarge, match="3 texts in one request: at most 2"):
        check_size(["a", "b", "c"], 2, 100)
    with pytest.raises(TooLarge, match="6 characters in one request: at most 5"):
        check_size(["abc", "def"], 10, 5)
    assert ServiceError("x").transient and ServiceError("x", status=503).transient
    assert not ServiceError("x", status=400).transient


def test_batcher_groups_requests_keeps_order_and_refuses_when_full() -> None:
    calls: list[list[str]] = []
    gate = threading.Event()

    def fn(texts: list[str]) -> list[str]:
        gate.wait(5)
        calls.append(list(texts))
        return [t.upper() for t in texts]

    async def run() -> None:
        with ThreadPoolExecutor(1) as pool:
            b: Batcher[str] = Batcher("q", fn, executor=pool, max_batch=4, max_queued=10)
            first = asyncio.ensure_future(b.submit(["a"]))
            await asyncio.sleep(0.05)  # taken: the model is busy with it
            rest = [asyncio.ensure_future(b.submit(t)) for t in (["b", "c"], ["d"], list("efghij"))]
            await asyncio.sleep(0.05)
            assert b.queued == 9
            with pytest.raises(Overloaded, match="the q queue is full"):
                await b.submit(["k", "l"])
            gate.set()
            assert await first == ["A"]
            assert [await r for r in rest] == [["B", "C"], ["D"], list("EFGHIJ")]
            await b.close()

    asyncio.run(run())
    # the waiting requests rode together; the big one was cut at max_batch
    assert calls == [["a"], ["b", "c", "d"], ["e", "f", "g", "h"], ["i", "j"]]


def test_batcher_gives_each_request_the_error_of_its_batch() -> None:
    def fn(texts: list[str]) -> list[str]:
        raise ModelError("the model fell over")

    async def run() -> None:
        with ThreadPoolExecutor(1) as pool:
            b: Batcher[str] = Batcher("q", fn, executor=pool)
            with pytest.raises(ModelError, match="fell over"):
                await b.submit(["a"])
            assert await b.submit([]) == []
            await b.close()

    asyncio.run(run())


def test_query_result_round_trips_through_json() -> None:
    from xlidx.search.results import Hit, QueryResult

    result = QueryResult(
        mode="hybrid", took_ms=12.5, query_lang="fr", fusion="minmax", weights=(0.2, 0.8),
        fused_on="server", encode_ms=3.0, translations={"en": "cat"},
        hits=[Hit("d1", 0.9, "fr", {"text": "chat"}, {"text": ["<em>chat</em>"]}, 1, 2.0, 3, 0.5)],
    )  # fmt: skip
    assert QueryResult.from_json(result.to_json(True)).to_json(True) == result.to_json(True)
    assert QueryResult.from_json(result.to_json(False)).to_json(False) == result.to_json(False)


def test_serve_client_settings(tmp_path: Path) -> None:
    from xlidx.config import serve_api_keys, serve_client_settings

    config = tmp_path / "config.toml"
    config.write_text('[serve]\nurl = "http://10.0.0.5:8765"\napi_key = "k1"\n')
    got = serve_client_settings(config, env={})
    assert got.url == "http://10.0.0.5:8765" and got.api_key is not None
    assert got.api_key.get() == "k1" and "k1" not in repr(got)
    env = {"XLIDX_SERVE_URL": "https://svc:1", "XLIDX_SERVE_API_KEY": "k2"}
    assert serve_client_settings(config, env=env).url == "https://svc:1"
    assert serve_client_settings(None, env={}).url is None
    config.write_text('[serve]\nurl = "svc"\n')
    with pytest.raises(ConfigError, match="invalid serve URL 'svc'"):
        serve_client_settings(config, env={})
    config.write_text("[serve]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[serve\]: port"):
        serve_client_settings(config, env={})
    assert serve_api_keys({"XLIDX_SERVE_API_KEYS": " a, b ,,"}) == ["a", "b"]


def test_query_serve_unreachable_is_one_line() -> None:
    from tests.conftest import run_cli

    proc = run_cli("query", "bees", "--index", "news", "--serve", "http://127.0.0.1:9",
                   "--retry-for", "0")  # fmt: skip
    assert proc.returncode == 1
    assert "cannot reach xlidx serve at http://127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    bad = run_cli("query", "bees", "--index", "news", "--serve", "http://127.0.0.1:9",
                  "--k", "0")  # fmt: skip
    assert bad.returncode == 2  # checked before anything is sent


def test_one_translator_per_device_and_mps_translates_on_the_cpu() -> None:
    from xlidx.workflows import Cluster

    cluster = Cluster()
    assert (
        cluster.translator("mps").device == "cpu" and cluster.translator("cuda:1").device == "cuda"
    )
    assert cluster.translator("cpu") is cluster.translator("mps")
