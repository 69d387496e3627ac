"""``xlidx connect elasticsearch`` on the Elasticsearch dev node, through the CLI.

The dev node (the integ-test distribution) has no inference API, so ``connect`` must stop
with one line, exit 1 and change nothing; ``--dry-run`` lists every request (the key
redacted) and sends none; ``--remove`` finds nothing to remove, as often as it is run; bad
input is one line. What ``connect`` makes where the cluster can is checked over an in-memory
cluster (tests/unit/test_connect_es_flow.py) and against a real ``xlidx serve``
(tests/contract/test_es_inference_requests.py).

Until ``connect elasticsearch`` is registered on the CLI's ``connect`` group, the tests run
the command on an app made of the real root command and that group.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import drop_index, run_cli
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration

KEY = "s3cret-serve-key-for-tests"
SERVE = "http://127.0.0.1:1"  # nothing listens there

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def xlidx() -> Run:
    """``run_cli``: the command line as a user runs it."""
    return run_cli


@pytest.fixture
def es_index(es_node: ConnectionSettings) -> Iterator[str]:
    """An empty xlidx index (32-d, fields title and text) on the Elasticsearch node."""
    from xlidx.backends import open_backend
    from xlidx.indices.manage import ensure
    from xlidx.spec import IndexSpec

    name = f"xlidx-test-conn-{uuid.uuid4().hex[:8]}"
    spec = IndexSpec(name=name, embedding={"model": "tiny-st", "dimension": 32},
                     text_fields=("title", "text"))  # fmt: skip
    ensure(open_backend(es_node), spec)
    yield name
    drop_index(es_node, name)


def _untouched(es: ConnectionSettings, name: str) -> None:
    """Nothing of a connection exists: no pipeline, no default pipeline, no vector fields, no
    record in ``_meta``."""
    url = es.urls[0]
    assert httpx.get(f"{url}/_ingest/pipeline/xlidx-{name}-ingest").status_code == 404
    concrete = f"{name}-v1"
    settings = httpx.get(f"{url}/{concrete}/_settings").json()[concrete]["settings"]["index"]
    assert "default_pipeline" not in settings
    mapping = httpx.get(f"{url}/{concrete}/_mapping").json()[concrete]["mappings"]
    assert "xlidx_inference" not in mapping["properties"]
    assert "integration" not in mapping["_meta"]["xlidx"]


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr and KEY not in res.stderr + res.stdout
    return lines[0]


def test_refused_in_one_line_where_there_is_no_inference_api(
    xlidx: Run, es_node: ConnectionSettings, es_index: str
) -> None:
    url = es_node.urls[0]
    res = xlidx("--url", url, "connect", "elasticsearch", "--index", es_index,
                "--serve", SERVE, "--api-key", KEY)  # fmt: skip
    assert res.returncode == 1, res.stderr
    line = _one_error_line(res)
    assert "has no inference API" in line and url in line
    assert f"`xlidx ingest --from-index SRC --index {es_index} --follow`" in line
    _untouched(es_node, es_index)


def test_dry_run_lists_the_requests_with_the_key_redacted_and_sends_none(
    xlidx: Run, es_node: ConnectionSettings, es_index: str
) -> None:
    url = es_node.urls[0]
    args = ("--url", url, "connect", "elasticsearch", "--index", es_index, "--serve", SERVE,
            "--api-key", KEY, "--dry-run")  # fmt: skip
    text = xlidx(*args)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("dry run: only the index's state was read.")
    for line in (
        f"PUT /_inference/text_embedding/xlidx-{es_index}   (create the inference endpoint)",
        f"PUT /{es_index}-v1/_mapping   (add the vector fields)",
        f"PUT /_ingest/pipeline/xlidx-{es_index}-ingest   (create the ingest pipeline)",
        f"PUT /{es_index}-v1/_settings   (make the pipeline the index's default)",
        f"POST {SERVE}/v1/embeddings   (embed a probe text)",
    ):
        assert line in text.stdout
    assert '"api_key": "<redacted>"' in text.stdout and "$.data[*].embedding[*]" in text.stdout
    assert KEY not in text.stdout + text.stderr

    as_json = xlidx(*args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    plan = json.loads(as_json.stdout)
    assert plan["dry_run"] is True and plan["parts"] == {} and KEY not in as_json.stdout
    put = next(r for r in plan["requests"]
               if r["method"] == "PUT" and r["path"].startswith("/_inference/"))  # fmt: skip
    settings = put["body"]["service_settings"]
    assert settings["secret_parameters"] == {"api_key": "<redacted>"}
    assert settings["url"] == f"{SERVE}/v1/embeddings" and settings["dimensions"] == 32
    assert json.loads(settings["request"].replace("${input}", '["x"]').replace(
        "${input_type}", '"ingest"')) == {"input": ["x"], "model": f"xlidx/{es_index}",
                                          "input_type": "ingest"}  # fmt: skip
    _untouched(es_node, es_index)


def test_remove_is_idempotent(xlidx: Run, es_node: ConnectionSettings, es_index: str) -> None:
    args = ("--url", es_node.urls[0], "connect", "elasticsearch", "--index", es_index,
            "--remove")  # fmt: skip
    for _ in range(2):
        res = xlidx(*args, "--json")
        assert res.returncode == 0, res.stderr
        done = json.loads(res.stdout)
        assert done["parts"] == {"default_pipeline": "absent", "pipeline": "absent",
                                 "endpoint": "absent"}  # fmt: skip
        assert done["recorded"] is False
    text = xlidx(*args)
    assert text.returncode == 0 and "ingest pipeline" in text.stdout and "absent" in text.stdout
    plan = xlidx(*args, "--dry-run")
    assert plan.returncode == 0
    assert f"DELETE /_inference/text_embedding/xlidx-{es_index}" in plan.stdout
    assert f"DELETE /_ingest/pipeline/xlidx-{es_index}-ingest" in plan.stdout
    _untouched(es_node, es_index)


def test_remove_takes_away_what_is_left_and_then_nothing(
    xlidx: Run, es_node: ConnectionSettings, es_index: str
) -> None:
    """A pipeline of that name run by default on the index, and a record in its ``_meta``
    (the endpoint cannot exist here): removed once, absent after."""
    from xlidx.backends import open_backend
    from xlidx.indices.manage import resolve, update_meta

    url, concrete, pipeline = es_node.urls[0], f"{es_index}-v1", f"xlidx-{es_index}-ingest"
    assert httpx.put(f"{url}/_ingest/pipeline/{pipeline}", json={"processors": []}).is_success
    assert httpx.put(f"{url}/{concrete}/_settings",
                     json={"index": {"default_pipeline": pipeline}}).is_success  # fmt: skip
    backend = open_backend(es_node)
    state = resolve(backend, es_index)
    assert state is not None
    update_meta(backend, state, {**state.xlidx_meta, "integration": {"endpoint": "x"}})
    args = ("--url", url, "connect", "elasticsearch", "--index", es_index, "--remove", "--json")
    first = xlidx(*args)
    assert first.returncode == 0, first.stderr
    done = json.loads(first.stdout)
    assert done["parts"] == {"default_pipeline": "removed", "pipeline": "removed",
                             "endpoint": "absent"}  # fmt: skip
    assert done["recorded"] is True
    _untouched(es_node, es_index)
    kept = resolve(backend, es_index)
    assert kept is not None and kept.xlidx_meta["embedding"]["dimension"] == 32
    again = json.loads(xlidx(*args).stdout)
    assert set(again["parts"].values()) == {"absent"} and again["recorded"] is False


def test_the_vector_fields_are_what_elasticsearch_takes(
    es_node: ConnectionSettings, es_index: str
) -> None:
    """The mapping and default-pipeline requests, sent to Elasticsearch 8.19 itself, and its
    replies read back as the workflow reads them."""
    from xlidx.backends import open_backend
    from xlidx.backends.elasticsearch import inference as inf
    from xlidx.backends.requests import Request
    from xlidx.workflows.connect_es import _default_pipeline

    backend, concrete = open_backend(es_node), f"{es_index}-v1"

    def send(req: Request) -> Any:
        return backend.request(req.method, req.path, req.action, body=req.body)

    wanted = inf.mapping_properties(("title", "text"), 32, "cosinesimil")

    def props() -> dict[str, Any]:
        reply: dict[str, Any] = send(inf.get_mapping(concrete))
        return dict(reply[concrete]["mappings"]["properties"])

    assert not inf.has_properties(props(), wanted)
    send(inf.put_mapping(concrete, wanted))
    send(inf.put_mapping(concrete, wanted))  # the same again: accepted, nothing changes
    assert inf.has_properties(props(), wanted)
    assert _default_pipeline(send(inf.get_settings(concrete)), concrete) is None
    empty = Request("PUT", inf.pipeline_path(es_index), "make a pipeline", {"processors": []})
    send(empty)
    try:
        send(inf.put_default_pipeline(concrete, inf.pipeline_id(es_index)))
        got = _default_pipeline(send(inf.get_settings(concrete)), concrete)
        assert got == inf.pipeline_id(es_index)
        send(inf.put_default_pipeline(concrete, None))
        assert _default_pipeline(send(inf.get_settings(concrete)), concrete) is None
    finally:
        send(inf.delete_pipeline(es_index))


def test_bad_input_is_one_line(
    xlidx: Run, es_node: ConnectionSettings, dev_node: ConnectionSettings, es_index: str
) -> None:
    url = es_node.urls[0]

    def connect(*args: str, at: str = url) -> subprocess.CompletedProcess[str]:
        return xlidx("--url", at, "connect", "elasticsearch", "--serve", SERVE, *args)

    missing = connect("--index", "xlidx-test-conn-none")
    assert missing.returncode == 1
    assert "no xlidx index named 'xlidx-test-conn-none'" in _one_error_line(missing)

    plain = f"xlidx-test-plain-{uuid.uuid4().hex[:8]}"
    assert httpx.put(f"{url}/{plain}").status_code == 200
    try:
        res = connect("--index", plain)
        assert res.returncode == 1 and "plain index" in _one_error_line(res)
    finally:
        httpx.delete(f"{url}/{plain}")

    bad_url = connect("--index", es_index, "--serve", "serve.example:8765", "--dry-run")
    assert bad_url.returncode == 1 and "invalid --serve URL" in _one_error_line(bad_url)

    no_serve = xlidx("--url", url, "connect", "elasticsearch", "--index", es_index)
    assert no_serve.returncode == 2 and "--serve" in no_serve.stderr  # a usage error

    opensearch = connect("--index", es_index, at=dev_node.urls[0])
    assert opensearch.returncode == 1
    assert "is opensearch" in _one_error_line(opensearch)  # the engine is checked first
    _untouched(es_node, es_index)


def test_unreachable_serve_is_one_line_in_real_mode_and_fine_in_a_dry_run(
    xlidx: Run, es_node: ConnectionSettings, es_index: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cluster's check (which the dev node fails: it is skipped here), the service
    is asked first, and a service nothing answers at stops the run before any change."""
    from xlidx.workflows import connect_es

    monkeypatch.setattr(connect_es, "check_cluster", lambda send, backend, name: None)
    args = ("--url", es_node.urls[0], "connect", "elasticsearch", "--index", es_index,
            "--serve", SERVE, "--api-key", KEY)  # fmt: skip
    res = xlidx(*args)
    assert res.returncode == 1
    assert _one_error_line(res).startswith(f"error: cannot reach xlidx serve at {SERVE}:")
    _untouched(es_node, es_index)
    assert xlidx(*args, "--dry-run").returncode == 0
