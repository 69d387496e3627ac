"""The decisions of ``xlidx connect elasticsearch`` (xlidx/workflows/connect_es.py) over an
in-memory Elasticsearch that has the inference API: what is created, left alone, refused and
removed, when ``_meta`` is written, and that a dry run sends nothing. The dev node has no
inference API, so this is the only place the writing path runs; the refusal, the dry run and
``--remove`` run on the real node in tests/integration/test_connect_es.py, and the requests
Elasticsearch then sends to the service in tests/contract/test_es_inference_requests.py.

The service probe is an HTTP call; it is replaced here, except in the tests of its own,
which use a throwaway local server and a port nothing listens on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from tests.unit.test_index_lifecycle import FakeBackend
from xlidx.backends.base import Capabilities
from xlidx.backends.elasticsearch import inference as inf
from xlidx.backends.requests import Request
from xlidx.errors import (
    BackendError,
    ConfigError,
    IndexNotFound,
    MappingError,
    ServiceError,
    Unsupported,
)
from xlidx.workflows import Index, connect_es
from xlidx.workflows.connect_es import connect_elasticsearch, disconnect_elasticsearch

KEY = "s3cret-serve-key"
META = {
    "xlidx": {
        "mapping_version": 2,
        "embedding": {"model": "tiny", "dimension": 8},
        "text_fields": ["title", "text"],
        "vector": {"engine": "lucene", "space_type": "cosinesimil"},
    }
}


class FakeEs(FakeBackend):
    """Indices, aliases, and what the inference and ingest APIs keep, in memory; every REST
    call is recorded in ``calls`` as ``("request", "METHOD /path")``."""

    engine = "elasticsearch"

    def __init__(
        self, *, inference: bool = True, licence: str = "enterprise", version: str = "8.19.3"
    ) -> None:
        super().__init__({"news-v1": META})
        self.point("news", "news-v1")
        self.inference, self.licence, self.version = inference, licence, version
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.properties: dict[str, dict[str, Any]] = {"news-v1": {"title": {"type": "text"}}}
        self.default_pipeline: dict[str, str] = {}

    def detect_capabilities(self) -> Capabilities:
        return Capabilities(engine=self.engine, version=self.version, distribution=self.engine)

    def put_meta(self, index: str, meta: Mapping[str, Any]) -> None:
        self.calls.append(("put_meta", index))
        self.indices[index] = json.loads(json.dumps(meta))

    def writes(self) -> list[str]:
        return [c[1] if c[0] == "request" else c[0] for c in self.calls
                if c[0] != "request" or not c[1].startswith("GET")]  # fmt: skip

    def request(
        self,
        method: str,
        path: str,
        action: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        self.calls.append(("request", f"{method} {path}"))
        parts = path.strip("/").split("/")
        if parts[0] == "_inference":
            if not self.inference:
                raise BackendError(f"no handler found for uri [{path}]", status=405)
            if parts[1:] == ["_all"]:
                return {"endpoints": list(self.endpoints.values())}
            ident = parts[2]
            if method == "PUT":
                if ident in self.endpoints:
                    raise BackendError("resource_already_exists", status=400)
                settings = {k: v for k, v in dict(body or {})["service_settings"].items()
                            if k != "secret_parameters"}  # fmt: skip
                self.endpoints[ident] = {
                    "inference_id": ident,
                    "task_type": parts[1],
                    "service": "custom",
                    "service_settings": settings,
                }
                return {}
            if ident not in self.endpoints:
                raise BackendError("resource_not_found_exception", status=404)
            if method == "DELETE":
                del self.endpoints[ident]
                return {"acknowledged": True}
            return {"endpoints": [self.endpoints[ident]]}
        if parts[0] == "_license":
            return {"license": {"type": self.licence, "status": "active"}}
        if parts[0] == "_ingest":
            ident = parts[2]
            if method == "PUT":
                self.pipelines[ident] = dict(body or {})
            elif method == "DELETE":
                self.pipelines.pop(ident, None)  # Elasticsearch answers 200 either way
            elif ident not in self.pipelines:
                raise BackendError("", status=404)
            else:
                return {ident: self.pipelines[ident]}
            return {"acknowledged": True}
        index, what = parts[0], parts[1]
        if what == "_mapping" and method == "GET":
            return {index: {"mappings": {"properties": self.properties[index]}}}
        if what == "_mapping":
            self.properties[index].update(dict(body or {})["properties"])
            return {"acknowledged": True}
        if what == "_settings" and method == "GET":
            found = self.default_pipeline.get(index)
            return {index: {"settings": {"index": {"default_pipeline": found}} if found else {}}}
        if what == "_settings":
            value = dict(body or {})["index"]["default_pipeline"]
            if value is None:
                self.default_pipeline.pop(index, None)
            else:
                self.default_pipeline[index] = value
            return {"acknowledged": True}
        raise AssertionError(f"unexpected request {method} {path}")


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    sent: list[Request] = []
    monkeypatch.setattr(connect_es, "probe_serve", lambda req, dims, **kw: sent.append(req))
    return sent


def test_connect_creates_everything_once_and_records_it(probes: list[Request]) -> None:
    es = FakeEs()
    done = connect_elasticsearch(Index(es, "news"), "http://serve:8765", api_key=KEY)
    assert done.parts == {"endpoint": "created", "mapping": "created", "pipeline": "created",
                          "default_pipeline": "created"}  # fmt: skip
    assert done.recorded and done.concrete == "news-v1"
    assert es.writes() == [
        "PUT /_inference/text_embedding/xlidx-news",
        "PUT /news-v1/_mapping",
        "PUT /_ingest/pipeline/xlidx-news-ingest",
        "PUT /news-v1/_settings",
        "put_meta",
    ]
    settings = es.endpoints["xlidx-news"]["service_settings"]
    assert settings["url"] == "http://serve:8765/v1/embeddings" and settings["dimensions"] == 8
    assert set(es.properties["news-v1"]["xlidx_inference"]["properties"]) == {
        "model_id", "title", "text"}  # fmt: skip
    assert es.default_pipeline == {"news-v1": "xlidx-news-ingest"}
    record = es.indices["news-v1"]["xlidx"]["integration"]
    assert record["endpoint"] == "xlidx-news" and record["pipeline"] == "xlidx-news-ingest"
    assert record["serve"] == "http://serve:8765" and record["model"] == "xlidx/news"
    assert es.indices["news-v1"]["xlidx"]["embedding"] == META["xlidx"]["embedding"]  # kept
    assert KEY not in json.dumps(es.indices) and KEY not in json.dumps(done.to_json())
    assert [p.body for p in probes] == [
        {"input": ["xlidx connect probe"], "model": "xlidx/news", "input_type": "ingest"}
    ]
    # again: nothing to do, nothing written
    es.calls.clear()
    again = connect_elasticsearch(Index(es, "news"), "http://serve:8765", api_key=KEY)
    assert set(again.parts.values()) == {"unchanged"} and not again.recorded
    assert es.writes() == []


def test_dry_run_lists_every_request_and_sends_none(probes: list[Request]) -> None:
    es = FakeEs(inference=False)  # even where it could not be done
    plan = connect_elasticsearch(Index(es, "news"), "http://serve:8765", api_key=KEY,
                                 dry_run=True)  # fmt: skip
    assert es.calls == []  # no request at all, no change
    assert probes == [] and plan.parts == {} and not plan.recorded
    lines = [r.line() for r in plan.requests]
    assert lines == [
        "GET /_inference/_all",
        "GET /_license",
        "POST http://serve:8765/v1/embeddings",
        "GET /news-v1/_mapping",
        "GET /news-v1/_settings/index.default_pipeline",
        "GET /_inference/text_embedding/xlidx-news",
        "PUT /_inference/text_embedding/xlidx-news",
        "PUT /news-v1/_mapping",
        "GET /_ingest/pipeline/xlidx-news-ingest",
        "PUT /_ingest/pipeline/xlidx-news-ingest",
        "PUT /news-v1/_settings",
        "PUT /news-v1/_mapping",
    ]
    shown = json.dumps(plan.to_json())
    assert KEY not in shown and shown.count("<redacted>") == 2  # the secret, the probe's header
    assert plan.to_json()["requests"][-1]["body"]["_meta"]["xlidx"]["integration"]["endpoint"] \
        == "xlidx-news"  # fmt: skip
    removal = disconnect_elasticsearch(Index(es, "news"), dry_run=True)
    assert [r.method for r in removal.requests] == ["GET", "GET", "PUT", "GET", "DELETE", "GET",
                                                     "DELETE"]  # fmt: skip
    assert es.calls == []


@pytest.mark.parametrize(
    ("es", "said"),
    [
        (FakeEs(inference=False), "it has no inference API (GET _inference/_all answered HTTP 405"),
        (FakeEs(licence="basic"), "its licence is basic (active)"),
        (FakeEs(version="8.18.2"), "Elasticsearch 8.18.2 has no `custom` inference service"),
        (FakeEs(version="9.0.4"), "Elasticsearch 9.0.4 has no `custom` inference service"),
    ],
)
def test_refused_where_the_cluster_cannot(es: FakeEs, said: str, probes: list[Request]) -> None:
    with pytest.raises(Unsupported) as exc:
        connect_elasticsearch(Index(es, "news"), "http://serve:8765", api_key=KEY)
    message = str(exc.value)
    assert said in message and "\n" not in message and exc.value.exit_code == 1
    assert "`xlidx ingest --from-index SRC --index news --follow`" in message
    assert es.writes() == [] and probes == []


def test_bad_input_is_one_line(probes: list[Request]) -> None:
    es = FakeEs()
    es.indices["plain"] = {}
    with pytest.raises(IndexNotFound, match="no xlidx index named 'nope'"):
        connect_elasticsearch(Index(es, "nope"), "http://serve:8765")
    with pytest.raises(MappingError, match="plain index"):
        connect_elasticsearch(Index(es, "plain"), "http://serve:8765")
    with pytest.raises(ConfigError, match="--serve URL"):
        connect_elasticsearch(Index(es, "news"), "serve:8765")
    other = FakeEs()
    other.engine = "opensearch"
    with pytest.raises(Unsupported, match="is opensearch"):
        connect_elasticsearch(Index(other, "news"), "http://serve:8765")
    assert es.writes() == [] and other.writes() == []


def test_an_endpoint_made_otherwise_or_a_foreign_default_pipeline_is_refused(
    probes: list[Request],
) -> None:
    es = FakeEs()
    connect_elasticsearch(Index(es, "news"), "http://serve:8765", api_key=KEY)
    es.calls.clear()
    with pytest.raises(ConfigError, match="exists with other settings"):
        connect_elasticsearch(Index(es, "news"), "http://elsewhere:8765", api_key=KEY)
    assert es.writes() == []
    fresh = FakeEs()
    fresh.default_pipeline["news-v1"] = "apps-pipeline"
    with pytest.raises(ConfigError, match="'apps-pipeline'"):
        connect_elasticsearch(Index(fresh, "news"), "http://serve:8765")
    assert fresh.writes() == []


def test_remove_undoes_connect_and_is_idempotent(probes: list[Request]) -> None:
    es = FakeEs()
    connect_elasticsearch(Index(es, "news"), "http://serve:8765", api_key=KEY)
    es.calls.clear()
    gone = disconnect_elasticsearch(Index(es, "news"))
    assert gone.parts == {"default_pipeline": "removed", "pipeline": "removed",
                          "endpoint": "removed"}  # fmt: skip
    assert gone.recorded and "integration" not in es.indices["news-v1"]["xlidx"]
    assert es.writes() == [
        "PUT /news-v1/_settings",
        "DELETE /_ingest/pipeline/xlidx-news-ingest",
        "DELETE /_inference/text_embedding/xlidx-news",
        "put_meta",
    ]
    assert es.endpoints == {} and es.pipelines == {} and es.default_pipeline == {}
    es.calls.clear()
    again = disconnect_elasticsearch(Index(es, "news"))
    assert set(again.parts.values()) == {"absent"} and not again.recorded
    assert es.writes() == []
    # a cluster with no inference API has no endpoint to delete; a gone index, no settings
    bare = FakeEs(inference=False)
    nothing = disconnect_elasticsearch(Index(bare, "gone"))
    assert nothing.parts == {"pipeline": "absent", "endpoint": "absent"}
    assert nothing.concrete is None and bare.writes() == []


# -- the service probe ---------------------------------------------------------------------------


@pytest.fixture
def fake_serve() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server answering /v1/embeddings as the test sets it; what it was sent."""
    seen: list[dict[str, Any]] = []
    answer: dict[str, Any] = {"status": 200, "body": {}}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers["Content-Length"])
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                         "body": json.loads(self.rfile.read(n))})  # fmt: skip
            data = json.dumps(answer["body"]).encode()
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    seen.append(answer)  # seen[0] is the answer to give, the requests follow
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_probe_serve(fake_serve: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = fake_serve
    answer = seen[0]
    probe = inf.serve_probe("news", url, KEY)
    answer["body"] = {"data": [{"index": 0, "embedding": [0.0] * 8}]}
    connect_es.probe_serve(probe, 8)
    assert seen[1] == {"path": "/v1/embeddings", "auth": f"Bearer {KEY}",
                       "body": {"input": ["xlidx connect probe"], "model": "xlidx/news",
                                "input_type": "ingest"}}  # fmt: skip
    with pytest.raises(MappingError, match="gives 8-d vectors for xlidx/news, the index holds 16"):
        connect_es.probe_serve(probe, 16)
    answer.update(status=401, body={"error": {"message": "missing or wrong API key"}})
    with pytest.raises(ServiceError, match="answered 401: missing or wrong API key") as exc:
        connect_es.probe_serve(probe, 8)
    assert KEY not in str(exc.value)


def test_probe_serve_unreachable_is_one_line() -> None:
    with pytest.raises(ServiceError) as exc:
        connect_es.probe_serve(inf.serve_probe("news", "http://127.0.0.1:1", KEY), 8, timeout=5)
    message = str(exc.value)
    assert message.startswith("cannot reach xlidx serve at http://127.0.0.1:1:")
    assert "\n" not in message and KEY not in message and exc.value.status is None
