"""The pure parts of ``xlidx connect opensearch``: request bodies, the trusted-endpoint
pattern, when private addresses are needed, and what a dry run shows (no key)."""

from __future__ import annotations

import json
import re

import pytest

from xlidx.backends.opensearch import ml
from xlidx.backends.requests import Request
from xlidx.query.plan import Query
from xlidx.workflows.connect import Connected, needs_private_ip


def test_endpoint_pattern_admits_the_service_and_nothing_else() -> None:
    pattern = ml.endpoint_pattern("http://10.0.0.5:8765/")
    assert re.fullmatch(pattern, "http://10.0.0.5:8765/v1/embeddings")
    assert re.fullmatch(pattern, "http://10.0.0.5:8765/indices/news/enrich")
    assert not re.fullmatch(pattern, "http://10.0.0.5:87650/v1/embeddings")
    assert not re.fullmatch(pattern, "http://10x0x0x5:8765/v1/embeddings")  # dots escaped
    assert not re.fullmatch(pattern, "https://evil.example/?u=http://10.0.0.5:8765/")


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("http://127.0.0.1:8765", True),
        ("http://10.1.2.3", True),
        ("http://192.168.0.9:80", True),
        ("http://[::1]:8765", True),
        ("http://8.8.8.8:8765", False),
        ("http://no-such-host.invalid:8765", False),
    ],
)
def test_private_addresses_are_told_apart(url: str, private: bool) -> None:
    assert needs_private_ip(url) is private


def test_every_role_has_a_connector_with_limits_timeouts_and_a_credential() -> None:
    for role in ml.ROLES:
        body = ml.connector_body("news", role, "http://serve:8765/", "k3y")
        assert body["credential"] == {"api_key": "k3y"}
        assert body["client_config"]["connection_timeout"] == 5  # seconds, always set
        assert body["client_config"]["max_connection"] >= 64
        action = body["actions"][0]
        assert action["url"].startswith("http://serve:8765/")
        assert action["headers"]["Authorization"] == "Bearer ${credential.api_key}"
        assert "k3y" not in json.dumps(action)
    query = ml.connector_body("news", "query", "http://serve:8765", "k")
    assert query["parameters"]["model"] == "xlidx/news:query"  # never the passage role
    doc = ml.connector_body("news", "document", "http://serve:8765", "k")
    assert doc["actions"][0]["url"] == "http://serve:8765/indices/news/enrich"
    with pytest.raises(ValueError, match="unknown role"):
        ml.connector_body("news", "nope", "http://serve:8765", "k")


def test_ingest_pipeline_never_fails_a_write() -> None:
    body = ml.ingest_pipeline_body("news", "model-1")
    kinds = [next(iter(p)) for p in body["processors"]]
    assert kinds == ["script", "ml_inference", "script"]
    assert body["processors"][1]["ml_inference"]["model_id"] == "model-1"
    fails = body["on_failure"]
    assert any(p.get("set", {}).get("field") == "xlidx.pending.reason" for p in fails)
    assert all("fail" not in p for p in fails)  # the document is indexed as written


def test_the_hybrid_example_uses_xlidx_bm25_and_the_query_model() -> None:
    plan = Query("les abeilles").text_fields("title", "body").query_lang("fr").plan()
    body = ml.hybrid_query(plan, "qm")
    bm25, knn = body["query"]["hybrid"]["queries"]
    fields = [c["multi_match"]["fields"] for c in bm25["bool"]["should"]]
    assert fields == [["title", "body"], ["i18n.title.fr", "i18n.body.fr"]]
    neural = knn["nested"]["query"]["neural"]["xlidx.passages.vector"]
    assert neural == {"query_text": "les abeilles", "model_id": "qm", "k": plan.window}


def test_a_dry_run_shows_requests_without_the_key() -> None:
    body = ml.connector_body("news", "passage", "http://serve:8765", "s3cret")
    result = Connected("news", "news-v1", "http://serve:8765", dry_run=True)
    result.requests = [Request("POST", "/_plugins/_ml/connectors/_create", "create", body)]
    shown = json.dumps(result.to_json())
    assert "s3cret" not in shown and "<redacted>" in shown
    assert result.to_json()["requests"][0]["path"] == "/_plugins/_ml/connectors/_create"
