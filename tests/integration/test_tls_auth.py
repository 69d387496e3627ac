"""TLS and basic auth for real: Debian's nginx, with a certificate made here, in front of each
engine's node (every test runs once against OpenSearch and once against Elasticsearch).

Each failure a user can hit (wrong password, unknown CA, unreachable host) must give one clear
line on stderr and exit 1; the password must never appear in any output.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, require_binary, run_cli
from tests.fixtures.tls import self_signed
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration

USER = "xlidx-tester"
PASSWORD = "Canary-Pw-31337"


@dataclass(frozen=True)
class Proxy:
    url: str
    ca: Path
    workdir: Path
    engine: str


def _openssl(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.fixture(scope="module")
def tls_proxy(
    engine_node: ConnectionSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    require_binary("openssl")
    d = tmp_path_factory.mktemp("nginx")
    os.chmod(d, 0o755)  # noqa: S103 - nginx workers must reach the files
    self_signed(d)
    hashed = _openssl("passwd", "-apr1", PASSWORD, cwd=d).strip()
    (d / "htpasswd").write_text(f"{USER}:{hashed}\n")
    os.chmod(d / "htpasswd", 0o644)
    port = free_port()
    upstream = engine_node.urls[0]
    user_line = "user root;" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(
        f"""
{user_line}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    location / {{
      auth_basic "xlidx test";
      auth_basic_user_file {d}/htpasswd;
      proxy_set_header Authorization "";
      proxy_pass {upstream};
    }}
  }}
}}
"""
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(d), "-c", str(d / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        from xlidx.devnode.node import port_in_use

        while not port_in_use(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"nginx did not start: {err}")
            time.sleep(0.1)
        yield Proxy(
            url=f"https://127.0.0.1:{port}",
            ca=d / "cert.pem",
            workdir=d,
            engine=str(engine_node.engine),
        )
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr is not None:
            proc.stderr.close()


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _no_secret(proc: subprocess.CompletedProcess[str]) -> None:
    assert PASSWORD not in proc.stdout and PASSWORD not in proc.stderr


def test_tls_and_basic_auth_work(tls_proxy: Proxy) -> None:
    proc = run_cli(
        "--url",
        tls_proxy.url,
        "--ca-certs",
        str(tls_proxy.ca),
        "--username",
        USER,
        "info",
        "--json",
        env={"XLIDX_PASSWORD": PASSWORD},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["backend"] == tls_proxy.engine  # detected through the proxy
    assert report["url"] == tls_proxy.url
    _no_secret(proc)


def test_settings_from_environment_and_config_file(tls_proxy: Proxy, tmp_path: Path) -> None:
    env = {
        "XLIDX_URL": tls_proxy.url,
        "XLIDX_CA_CERTS": str(tls_proxy.ca),
        "XLIDX_USERNAME": USER,
        "XLIDX_PASSWORD": PASSWORD,
    }
    assert run_cli("index", "list", "--json", env=env).returncode == 0
    cfg = tmp_path / "xlidx.toml"
    cfg.write_text(
        f'[connection]\nurl = "{tls_proxy.url}"\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
        f'ca_certs = "{tls_proxy.ca}"\n'
    )
    proc = run_cli("--config", str(cfg), "info")
    assert proc.returncode == 0, proc.stderr
    assert f"version:  {tls_proxy.engine}" in proc.stdout
    _no_secret(proc)


def test_wrong_password(tls_proxy: Proxy) -> None:
    proc = run_cli(
        "--url",
        tls_proxy.url,
        "--ca-certs",
        str(tls_proxy.ca),
        "--username",
        USER,
        "--password",
        PASSWORD + "-wrong",
        "info",
    )
    line = _one_error_line(proc)
    assert "rejected the credentials (HTTP 401)" in line
    assert "-wrong" not in proc.stderr
    _no_secret(proc)


def test_missing_credentials(tls_proxy: Proxy) -> None:
    proc = run_cli("--url", tls_proxy.url, "--ca-certs", str(tls_proxy.ca), "info")
    assert "HTTP 401" in _one_error_line(proc)


def test_unknown_ca(tls_proxy: Proxy) -> None:
    proc = run_cli(
        "--url", tls_proxy.url, "--username", USER, "info", env={"XLIDX_PASSWORD": PASSWORD}
    )
    line = _one_error_line(proc)
    assert "TLS handshake with" in line and "--ca-certs" in line
    _no_secret(proc)


def test_insecure_skips_verification(tls_proxy: Proxy) -> None:
    proc = run_cli(
        "--url",
        tls_proxy.url,
        "--insecure",
        "--username",
        USER,
        "info",
        env={"XLIDX_PASSWORD": PASSWORD},
    )
    assert proc.returncode == 0, proc.stderr
    _no_secret(proc)


def test_unreachable_host(tls_proxy: Proxy) -> None:
    closed = free_port()
    proc = run_cli(
        "--url",
        f"https://127.0.0.1:{closed}",
        "--ca-certs",
        str(tls_proxy.ca),
        "--username",
        USER,
        "--timeout",
        "3",
        "info",
        env={"XLIDX_PASSWORD": PASSWORD},
    )
    assert f"cannot connect to https://127.0.0.1:{closed}" in _one_error_line(proc)
    _no_secret(proc)


def test_password_in_url_is_never_shown(tls_proxy: Proxy) -> None:
    url = tls_proxy.url.replace("https://", f"https://{USER}:{PASSWORD}x@")
    proc = run_cli("--url", url, "--ca-certs", str(tls_proxy.ca), "info")
    _one_error_line(proc)
    assert f"{PASSWORD}x" not in proc.stderr


@pytest.mark.parametrize("case", ["ok", "wrong-password", "unknown-ca"])
def test_the_engines_own_client_when_the_backend_is_named(tls_proxy: Proxy, case: str) -> None:
    """With --backend the engine is not probed: the engine's own client library meets TLS and
    basic auth, and its errors are the same one-line errors."""
    args = ["--url", tls_proxy.url, "--backend", tls_proxy.engine, "--username", USER]
    if case != "unknown-ca":
        args += ["--ca-certs", str(tls_proxy.ca)]
    password = PASSWORD + "-wrong" if case == "wrong-password" else PASSWORD
    proc = run_cli(*args, "index", "list", "--json", env={"XLIDX_PASSWORD": password})
    if case == "ok":
        assert proc.returncode == 0, proc.stderr
        assert isinstance(json.loads(proc.stdout), list)
    elif case == "wrong-password":
        assert "rejected the credentials (HTTP 401)" in _one_error_line(proc)
    else:
        line = _one_error_line(proc)
        assert "TLS handshake with" in line and "--ca-certs" in line
    _no_secret(proc)
