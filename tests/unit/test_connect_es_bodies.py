"""The requests ``xlidx connect elasticsearch`` builds (xlidx/backends/elasticsearch/inference.py),
against literal dicts: the ``custom`` inference endpoint as Elasticsearch 8.19 parses it, its
request template as Elasticsearch renders it, the vector fields, the ingest pipeline, the
licence check and the redaction of the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from xlidx.backends.elasticsearch import inference as inf
from xlidx.backends.requests import redact
from xlidx.errors import ConfigError

KEY = "s3cret-serve-key"


def test_endpoint_body_is_the_custom_service_of_8_19() -> None:
    body = inf.endpoint_body(
        "news", "http://10.0.0.5:8765/", api_key=KEY, dimensions=384, similarity="cosinesimil"
    )
    assert body == {
        "service": "custom",
        "service_settings": {
            "url": "http://10.0.0.5:8765/v1/embeddings",
            "headers": {"Content-Type": "application/json", "Authorization": "Bearer ${api_key}"},
            "secret_parameters": {"api_key": KEY},
            "request": '{"input": ${input}, "model": "xlidx/news", "input_type": ${input_type}}',
            "response": {"json_parser": {"text_embeddings": "$.data[*].embedding[*]"}},
            "input_type": {
                "translation": {"ingest": "ingest", "search": "search"},
                "default": "ingest",
            },
            "dimensions": 384,
            "similarity": "cosine",
        },
    }
    # no key: no Authorization header, no secret
    open_ = inf.endpoint_body("news", "https://serve.example/x", api_key=None, dimensions=8,
                              similarity="innerproduct")["service_settings"]  # fmt: skip
    assert open_["url"] == "https://serve.example/x/v1/embeddings"
    assert open_["headers"] == {"Content-Type": "application/json"}
    assert "secret_parameters" not in open_ and open_["similarity"] == "dot_product"
    assert (
        inf.endpoint_body("n", "http://h", api_key=None, dimensions=8, similarity="l2")[
            "service_settings"
        ]["similarity"]
        == "l2_norm"
    )


def test_the_template_renders_as_elasticsearch_renders_it() -> None:
    settings = inf.endpoint_body(
        "news", "http://h:1", api_key=KEY, dimensions=8, similarity="cosinesimil"
    )["service_settings"]
    texts = ["Le chat dort.", 'a "quoted" \\ text', "日本語"]
    for es_type, sent in (("ingest", "ingest"), ("search", "search")):
        rendered = inf.render_custom(
            settings["request"],
            {"input": texts, "input_type": settings["input_type"]["translation"][es_type]},
            json_values=True,
        )
        assert json.loads(rendered) == {"input": texts, "model": "xlidx/news", "input_type": sent}
        assert rendered.startswith('{"input": ["Le chat dort.",')  # compact values, as ES
    headers = {
        k: inf.render_custom(v, settings["secret_parameters"], json_values=False)
        for k, v in settings["headers"].items()
    }
    assert headers == {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    with pytest.raises(ConfigError, match="api_key"):
        inf.render_custom("Bearer ${api_key}", {}, json_values=False)


@pytest.mark.parametrize(
    "url",
    ["ftp://h:1", "h:8765", "http://", "http://h:1/?x=1", "http://user:pw@h:1"],
)
def test_bad_serve_urls(url: str) -> None:
    with pytest.raises(ConfigError) as exc:
        inf.embeddings_url(url)
    assert "pw" not in str(exc.value)


def test_mapping_properties_and_whether_an_index_has_them() -> None:
    props = inf.mapping_properties(("title", "meta.body"), 32, "cosinesimil")
    vector = {"type": "dense_vector", "dims": 32, "index": True, "similarity": "cosine"}
    assert props == {
        "xlidx_inference": {
            "properties": {
                "model_id": {"type": "keyword"},
                "title": vector,
                "meta_body": vector,
            }
        },
        # the mark of a write the service could not enrich
        "xlidx": {
            "properties": {
                "pending": {"properties": {"reason": {"type": "text"}, "since": {"type": "date"}}}
            }
        },
    }
    assert (
        inf.mapping_properties(("t",), 8, "innerproduct")["xlidx_inference"]["properties"]["t"][
            "similarity"
        ]
        == "max_inner_product"
    )
    assert inf.has_properties(props, props)
    assert not inf.has_properties({}, props)
    other = {"xlidx_inference": {"properties": {**props["xlidx_inference"]["properties"],
                                                "title": {**vector, "dims": 64}}}}  # fmt: skip
    assert not inf.has_properties(other, props)
    with pytest.raises(ConfigError):
        inf.mapping_properties(("t",), 5000, "cosinesimil")


def test_pipeline_body_embeds_each_text_field() -> None:
    body = inf.pipeline_body("news", ("title", "body"))
    assert body["processors"] == [
        {"inference": {"tag": "xlidx-title", "model_id": "xlidx-news",
                       "input_output": [{"input_field": "title",
                                         "output_field": "xlidx_inference.title"}],
                       "ignore_missing": True}},
        {"inference": {"tag": "xlidx-body", "model_id": "xlidx-news",
                       "input_output": [{"input_field": "body",
                                         "output_field": "xlidx_inference.body"}],
                       "ignore_missing": True}},
    ]  # fmt: skip
    assert body["_meta"] == {"xlidx": {"index": "news", "endpoint": "xlidx-news"}}
    assert "xlidx/news" in body["description"]
    # the service down: the document is indexed as written, marked, never refused
    sets = [p["set"]["field"] for p in body["on_failure"] if "set" in p]
    assert sets == ["xlidx.pending.reason", "xlidx.pending.since"]
    assert not any("fail" in p for p in body["on_failure"])


@pytest.mark.parametrize(
    ("licence", "problem"),
    [
        ({"type": "enterprise", "status": "active"}, None),
        ({"type": "trial", "status": "active"}, None),
        ({"type": "basic", "status": "active"}, "its licence is basic (active)"),
        ({"type": "platinum", "status": "active"}, "its licence is platinum (active)"),
        ({"type": "enterprise", "status": "expired"}, "its licence is enterprise (expired)"),
        (None, "its licence is unknown (no status)"),
    ],
)
def test_licence_problem(licence: dict[str, str] | None, problem: str | None) -> None:
    assert inf.licence_problem({"license": licence} if licence else {}) == problem


def test_requests_never_show_the_key() -> None:
    body = inf.endpoint_body("news", "http://h:1", api_key=KEY, dimensions=8,
                             similarity="cosinesimil")  # fmt: skip
    shown = inf.put_endpoint("news", body).to_json()
    assert shown["method"] == "PUT" and shown["path"] == "/_inference/text_embedding/xlidx-news"
    assert shown["body"]["service_settings"]["secret_parameters"] == {"api_key": "<redacted>"}
    assert shown["body"]["service_settings"]["headers"]["Authorization"] == "Bearer ${api_key}"
    probe = inf.serve_probe("news", "http://h:1", KEY).to_json()
    assert probe["to"] == "serve" and probe["path"] == "http://h:1/v1/embeddings"
    assert probe["headers"] == {"Authorization": "<redacted>"}
    assert probe["body"] == {"input": ["xlidx connect probe"], "model": "xlidx/news",
                             "input_type": "ingest"}  # fmt: skip
    assert KEY not in json.dumps([shown, probe])
    assert redact({"a": [{"api_key": "x"}], "b": 1}) == {"a": [{"api_key": "<redacted>"}],
                                                              "b": 1}  # fmt: skip


def test_same_endpoint_reads_what_get_inference_answers() -> None:
    wanted = inf.endpoint_body("news", "http://h:1", api_key=KEY, dimensions=8,
                               similarity="cosinesimil")  # fmt: skip
    s = wanted["service_settings"]
    # GET _inference/text_embedding/xlidx-news: no secrets, its own defaults added
    found: dict[str, Any] = {
        "inference_id": "xlidx-news",
        "task_type": "text_embedding",
        "service": "custom",
        "service_settings": {
            "similarity": "cosine", "dimensions": 8, "url": s["url"], "headers": s["headers"],
            "request": s["request"], "response": {"json_parser": {
                "text_embeddings": "$.data[*].embedding[*]"}},
            "input_type": {"translation": {"ingest": "ingest", "search": "search"},
                           "default": "ingest"},
            "rate_limit": {"requests_per_minute": 10000}, "batch_size": 10,
        },
        "task_settings": {},
    }  # fmt: skip
    assert inf.same_endpoint(found, wanted)
    moved = {**found, "service_settings": {**found["service_settings"], "url": "http://x/v1"}}
    assert not inf.same_endpoint(moved, wanted)


def test_names_and_paths() -> None:
    assert inf.endpoint_id("news") == "xlidx-news"
    assert inf.pipeline_id("news") == "xlidx-news-ingest"
    assert [r.line() for r in inf.check_requests()] == ["GET /_inference/_all", "GET /_license"]
    assert inf.delete_pipeline("news").line() == "DELETE /_ingest/pipeline/xlidx-news-ingest"
    assert inf.delete_endpoint("news").line() == "DELETE /_inference/text_embedding/xlidx-news"
    assert inf.put_default_pipeline("news-v2", None).to_json()["body"] == {
        "index": {"default_pipeline": None}
    }


@pytest.mark.parametrize(
    ("version", "has"),
    [("8.19.0", True), ("8.19.3", True), ("9.1.0", True), ("9.2.1-SNAPSHOT", True),
     ("8.18.4", False), ("9.0.7", False), ("8.11.0", False), ("", False)],
)  # fmt: skip
def test_the_custom_service_came_with_8_19_and_9_1(version: str, has: bool) -> None:
    assert inf.has_custom_service(version) is has
