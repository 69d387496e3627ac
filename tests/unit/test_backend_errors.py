"""Pure logic of the OpenSearch backend: client kwargs and error translation."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from opensearchpy import exceptions as osx

from xlidx.backends.opensearch import client_kwargs, make_client, translate_error
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
