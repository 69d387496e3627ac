"""Pure logic of the backends' clients: engine detection, client kwargs, error translation.

The OpenSearch tests build opensearch-py exceptions, the Elasticsearch ones real
elasticsearch-py / elastic-transport exceptions, as each client raises them.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import elastic_transport
import elasticsearch
import pytest
from opensearchpy import exceptions as osx

from xlidx.backends import backend_class, detect_engine, engine_from_response, open_backend
from xlidx.backends.elasticsearch import ElasticsearchBackend
from xlidx.backends.elasticsearch import client as es_client
from xlidx.backends.opensearch import OpenSearchBackend
from xlidx.backends.opensearch.client import client_kwargs, make_client, translate_error
from xlidx.config import ConnectionSettings, Secret
from xlidx.errors import (
    AuthenticationFailed,
    BackendError,
    ConnectionFailed,
    TLSFailed,
)

S = ConnectionSettings(
    urls=("https://h:9200",), username="u", password=Secret("pw-canary"), timeout=7.0
)


def test_client_kwargs_literal() -> None:
    assert client_kwargs(S) == {
        "hosts": ["https://h:9200"],
        "timeout": 7.0,
        "max_retries": 0,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "verify_certs": True,
        "ssl_show_warn": True,
        "pool_maxsize": 8,
        "http_auth": ("u", "pw-canary"),
    }


def test_client_kwargs_tls_and_api_key(tmp_path: Path) -> None:
    s = ConnectionSettings(
        urls=("https://h:9200",),
        api_key=Secret("k"),
        ca_certs=tmp_path / "ca.pem",
        client_cert=tmp_path / "c.pem",
        client_key=tmp_path / "k.pem",
        verify_certs=False,
    )
    kw = client_kwargs(s)
    assert kw["headers"] == {"Authorization": "ApiKey k"}
    assert kw["ca_certs"] == str(tmp_path / "ca.pem")
    assert kw["client_cert"] == str(tmp_path / "c.pem")
    assert kw["client_key"] == str(tmp_path / "k.pem")
    assert kw["verify_certs"] is False and kw["ssl_show_warn"] is False


def test_missing_ca_file_is_clear(tmp_path: Path) -> None:
    s = ConnectionSettings(urls=("https://h:9200",), ca_certs=tmp_path / "missing.pem")
    with pytest.raises(TLSFailed, match="CA bundle not found"):
        make_client(s)


def test_auth_errors() -> None:
    e = translate_error(osx.AuthenticationException(401, "Unauthorized", {}), S, "read x")
    assert isinstance(e, AuthenticationFailed) and e.status == 401
    assert "rejected the credentials" in str(e) and "pw-canary" not in str(e)
    e = translate_error(osx.AuthorizationException(403, "Forbidden", {}), S, "read x")
    assert isinstance(e, AuthenticationFailed) and "denied permission" in str(e)


def test_tls_error() -> None:
    inner = ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    e = translate_error(osx.SSLError("N/A", "ssl", inner), S, "read x")
    assert isinstance(e, TLSFailed)
    assert "--ca-certs" in str(e)


def test_connection_errors() -> None:
    e = translate_error(
        osx.ConnectionError("N/A", "refused", OSError("Connection refused")), S, "x"
    )
    assert isinstance(e, ConnectionFailed) and "cannot connect to https://h:9200" in str(e)
    e = translate_error(osx.ConnectionTimeout("TIMEOUT", "t", OSError("timed out")), S, "x")
    assert isinstance(e, ConnectionFailed) and "within 7s" in str(e)


def test_http_error_keeps_status_and_root_cause() -> None:
    body = {
        "error": {
            "root_cause": [{"type": "index_not_found_exception", "reason": "no such index [a]"}]
        }
    }
    e = translate_error(osx.NotFoundError(404, "index_not_found_exception", body), S, "read a")
    assert isinstance(e, BackendError) and not isinstance(e, ConnectionFailed)
    assert e.status == 404 and e.details == body
    assert "HTTP 404" in str(e) and "no such index [a]" in str(e)


def test_secret_stripped_from_any_message() -> None:
    leak = osx.TransportError(500, "boom pw-canary", {"error": "contains pw-canary"})
    assert "pw-canary" not in str(translate_error(leak, S, "x"))


# -- Elasticsearch -----------------------------------------------------------------------------


def _meta(status: int) -> elastic_transport.ApiResponseMeta:
    return elastic_transport.ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=elastic_transport.HttpHeaders({"X-Elastic-Product": "Elasticsearch"}),
        duration=0.01,
        node=elastic_transport.NodeConfig("https", "h", 9200),
    )


def _raised_from(exc: Exception, cause: BaseException) -> Exception:
    """``exc`` as elastic-transport raises it: ``raise err from e``, and (with no retries) an
    empty ``errors`` tuple."""
    try:
        raise exc from cause
    except Exception as caught:
        return caught


def test_es_client_kwargs_literal() -> None:
    assert es_client.client_kwargs(S) == {
        "hosts": ["https://h:9200"],
        "request_timeout": 7.0,
        "max_retries": 0,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "verify_certs": True,
        "ssl_show_warn": True,
        "connections_per_node": 8,
        "basic_auth": ("u", "pw-canary"),
    }


def test_es_client_kwargs_tls_and_api_key(tmp_path: Path) -> None:
    s = ConnectionSettings(
        urls=("https://a:9200", "https://b:9200"),
        api_key=Secret("key-canary"),
        ca_certs=tmp_path / "ca.pem",
        client_cert=tmp_path / "c.pem",
        client_key=tmp_path / "k.pem",
        verify_certs=False,
        timeout=2.5,
    )
    assert es_client.client_kwargs(s) == {
        "hosts": ["https://a:9200", "https://b:9200"],
        "request_timeout": 2.5,
        "max_retries": 1,  # the other node, when one refuses
        "retry_on_status": (),
        "retry_on_timeout": False,
        "verify_certs": False,
        "ssl_show_warn": False,
        "connections_per_node": 8,
        "api_key": "key-canary",
        "ca_certs": str(tmp_path / "ca.pem"),
        "client_cert": str(tmp_path / "c.pem"),
        "client_key": str(tmp_path / "k.pem"),
    }


def test_es_client_hides_secrets() -> None:
    """The client is built without I/O, and neither it nor the settings show a secret."""
    for s in (S, ConnectionSettings(urls=("https://h:9200",), api_key=Secret("key-canary"))):
        client = es_client.make_client(s)
        for shown in (repr(client), str(client), repr(s), str(s)):
            assert "pw-canary" not in shown and "key-canary" not in shown


def test_es_missing_tls_files_are_clear(tmp_path: Path) -> None:
    s = ConnectionSettings(urls=("https://h:9200",), ca_certs=tmp_path / "missing.pem")
    with pytest.raises(TLSFailed, match="CA bundle not found"):
        es_client.make_client(s)
    s = ConnectionSettings(urls=("https://h:9200",), client_cert=tmp_path / "missing.pem")
    with pytest.raises(TLSFailed, match="client certificate not found"):
        es_client.make_client(s)


def test_es_auth_errors() -> None:
    body = {"error": {"type": "security_exception", "reason": "unable to authenticate pw-canary"}}
    e = es_client.translate_error(
        elasticsearch.AuthenticationException("security_exception", _meta(401), body), S, "read x"
    )
    assert isinstance(e, AuthenticationFailed) and e.status == 401
    assert str(e) == (
        "https://h:9200 rejected the credentials (HTTP 401) while trying to read x; check "
        "--username/--password (XLIDX_USERNAME/XLIDX_PASSWORD) or the API key"
    )
    e = es_client.translate_error(
        elasticsearch.AuthorizationException("security_exception", _meta(403), body), S, "read x"
    )
    assert isinstance(e, AuthenticationFailed) and e.status == 403
    assert "denied permission (HTTP 403)" in str(e) and "pw-canary" not in str(e)


def test_es_tls_error() -> None:
    inner = ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    exc = _raised_from(elastic_transport.TlsError(str(inner)), inner)
    e = es_client.translate_error(exc, S, "read x")
    assert isinstance(e, TLSFailed)
    assert str(e).startswith("TLS handshake with https://h:9200 failed (")
    assert "self-signed certificate" in str(e) and "--ca-certs" in str(e)
    # with verification off, a TLS failure is about the client's own certificate
    no_verify = ConnectionSettings(urls=("https://h:9200",), verify_certs=False)
    e = es_client.translate_error(exc, no_verify, "read x")
    assert isinstance(e, TLSFailed) and "check the client certificate and key" in str(e)


def test_es_connection_errors() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    exc = _raised_from(elastic_transport.ConnectionError("Failed to establish"), refused)
    e = es_client.translate_error(exc, S, "read x")
    assert type(e) is ConnectionFailed
    assert str(e) == "cannot connect to https://h:9200 to read x: [Errno 111] Connection refused"
    # the same, when the transport kept the underlying errors
    listed = elastic_transport.ConnectionError("x", errors=(OSError("no route to host"),))
    e = es_client.translate_error(listed, S, "read x")
    assert type(e) is ConnectionFailed and str(e).endswith("to read x: no route to host")
    timeout = elastic_transport.ConnectionTimeout("Connection timed out during request")
    e = es_client.translate_error(timeout, S, "read x")
    assert type(e) is ConnectionFailed
    assert str(e) == "https://h:9200 did not answer within 7s while trying to read x"


def test_es_http_error_keeps_status_and_root_cause() -> None:
    body = {
        "error": {
            "root_cause": [{"type": "index_not_found_exception", "reason": "no such index [a]"}],
            "type": "index_not_found_exception",
            "reason": "no such index [a]",
        },
        "status": 404,
    }
    exc = elasticsearch.NotFoundError("index_not_found_exception", _meta(404), body)
    e = es_client.translate_error(exc, S, "read a")
    assert type(e) is BackendError
    assert e.status == 404 and e.details == body
    assert str(e) == (
        "https://h:9200 answered HTTP 404 while trying to read a: "
        "index_not_found_exception: no such index [a]"
    )
    plain = elasticsearch.ApiError("Service Unavailable", _meta(503), "overloaded")
    e = es_client.translate_error(plain, S, "write documents")
    assert type(e) is BackendError and e.status == 503 and e.details is None
    assert "HTTP 503" in str(e) and "Service Unavailable" in str(e)


def test_es_not_elasticsearch() -> None:
    exc = elasticsearch.UnsupportedProductError("not Elasticsearch", _meta(200), {})
    e = es_client.translate_error(exc, S, "read x")
    assert type(e) is BackendError
    assert "is not Elasticsearch" in str(e) and "XLIDX_BACKEND=opensearch" in str(e)


def test_es_secret_stripped_from_any_message() -> None:
    s = ConnectionSettings(
        urls=("https://u:pw-canary@h:9200",),
        username="u",
        password=Secret("pw-canary"),
        api_key=Secret("key-canary"),
    )
    leaks: list[Exception] = [
        elasticsearch.ApiError(
            "boom pw-canary", _meta(500), {"error": "contains pw-canary and key-canary"}
        ),
        elasticsearch.BadRequestError("bad key-canary", _meta(400), "text with pw-canary"),
        elastic_transport.SerializationError("cannot decode pw-canary"),
        elastic_transport.ConnectionError(
            "x", errors=(OSError("https://u:pw-canary@h:9200 refused key-canary"),)
        ),
        ValueError("unexpected pw-canary"),
    ]
    for leak in leaks:
        e = es_client.translate_error(leak, s, "x")
        assert isinstance(e, BackendError)
        assert "canary" not in str(e), str(e)
        assert "https://h:9200" in str(e) or str(e).startswith("x failed")


def test_es_call_translates_and_chains() -> None:
    exc = elasticsearch.ConflictError("version_conflict", _meta(409), {"error": "conflict"})

    def fail() -> None:
        raise exc

    with pytest.raises(BackendError, match="HTTP 409 while trying to write d") as info:
        es_client.call(S, "write d", fail)
    assert info.value.status == 409 and info.value.__cause__ is exc
    assert es_client.call(S, "read", lambda: 42) == 42


# -- which engine answered ---------------------------------------------------------------------


OS_ROOT = {
    "name": "node-1",
    "cluster_name": "xlidx-dev",
    "version": {"distribution": "opensearch", "number": "2.19.0", "build_type": "tar"},
    "tagline": "The OpenSearch Project: https://opensearch.org/",
}
ES_ROOT = {
    "name": "node-1",
    "cluster_name": "xlidx-dev",
    "version": {"number": "8.19.3", "build_flavor": "default"},
    "tagline": "You Know, for Search",
}


@pytest.mark.parametrize(
    ("status", "headers", "body", "engine"),
    [
        (200, {"X-Elastic-Product": "Elasticsearch"}, ES_ROOT, "elasticsearch"),
        (200, {"x-elastic-product": "Elasticsearch"}, None, "elasticsearch"),
        # the integ-test distribution refuses GET / but still names itself in the header
        (405, {"X-Elastic-Product": "Elasticsearch"}, None, "elasticsearch"),
        (405, {}, None, "elasticsearch"),
        # a proxy that drops the header: the body's tagline still tells
        (200, {}, ES_ROOT, "elasticsearch"),
        (200, {"content-type": "application/json"}, OS_ROOT, "opensearch"),
        # OpenSearch's compatibility mode reports 7.10.2 but keeps its distribution
        (
            200,
            {},
            {**OS_ROOT, "version": {"distribution": "opensearch", "number": "7.10.2"}},
            "opensearch",
        ),
        (200, {}, {"hello": "world"}, None),
        (200, {}, {"version": {"number": "1.0"}, "tagline": "something else"}, None),
        (200, {}, "plain text", None),
        (404, {}, None, None),
        (503, {}, {"error": "unavailable"}, None),
    ],
)
def test_engine_from_response(
    status: int, headers: dict[str, str], body: object, engine: str | None
) -> None:
    assert engine_from_response(status, headers, body) == engine


def test_configured_engine_needs_no_request() -> None:
    """With the engine configured, opening a backend does no I/O (nothing listens on h)."""
    for engine, cls in (("opensearch", OpenSearchBackend), ("elasticsearch", ElasticsearchBackend)):
        s = ConnectionSettings(urls=("https://h:9200",), engine=engine)
        assert detect_engine(s) == engine
        assert backend_class(engine) is cls
        backend = open_backend(s)
        assert type(backend) is cls and backend.engine == engine and backend.settings is s
    with pytest.raises(BackendError, match="unknown backend 'solr'"):
        backend_class("solr")
