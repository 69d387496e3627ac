from __future__ import annotations

from pathlib import Path

import pytest

from xlidx.config import (
    ConnectionSettings,
    Secret,
    load_connection,
    read_config_file,
    read_env,
    redact_text,
    redact_url,
    resolve_connection,
)
from xlidx.errors import ConfigError


def test_defaults() -> None:
    s = resolve_connection()
    assert s.urls == ("http://127.0.0.1:9200",)
    assert s.verify_certs is True
    assert s.timeout == 30.0
    assert s.username is None and s.password is None


def test_flags_override_env_override_file() -> None:
    s = resolve_connection(
        file_values={"urls": ("https://file:9200",), "username": "file-user", "timeout": 5.0},
        env_values={"urls": ("https://env:9200",), "username": "env-user"},
        flag_values={"urls": ["https://flag:9200"], "timeout": None},
    )
    assert s.urls == ("https://flag:9200",)
    assert s.username == "env-user"
    assert s.timeout == 5.0  # None flag = not given


def test_env_parsing() -> None:
    env = {
        "XLIDX_URL": "https://a:9200, https://b:9200",
        "XLIDX_USERNAME": "u",
        "XLIDX_PASSWORD": "p",
        "XLIDX_VERIFY_CERTS": "false",
        "XLIDX_TIMEOUT": "2.5",
        "XLIDX_CA_CERTS": "~/ca.pem",
    }
    s = resolve_connection(env_values=read_env(env))
    assert s.urls == ("https://a:9200", "https://b:9200")
    assert s.password == Secret("p")
    assert s.verify_certs is False
    assert s.timeout == 2.5
    assert s.ca_certs == Path("~/ca.pem").expanduser()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"XLIDX_VERIFY_CERTS": "maybe"}, "must be true or false"),
        ({"XLIDX_TIMEOUT": "soon"}, "must be a number"),
        ({"XLIDX_URL": " , "}, "is empty"),
    ],
)
def test_bad_env_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_env(env)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"urls": ("ftp://x",)}, "invalid cluster URL"),
        ({"urls": ("localhost:9200",)}, "invalid cluster URL"),
        ({"urls": ("http://h:99999",)}, "invalid port"),
        ({"timeout": 0.0}, "timeout must be positive"),
        ({"password": Secret("p")}, "no username"),
        ({"client_key": Path("k.pem")}, "no client certificate"),
        ({"urls": ()}, "no cluster URL"),
    ],
)
def test_invalid_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConnectionSettings(**kwargs)  # type: ignore[arg-type]


def test_secret_never_shows() -> None:
    s = ConnectionSettings(username="u", password=Secret("hunter2"), api_key=Secret("k3y"))
    for text in (repr(s), str(s), repr(s.password), f"{s.api_key}"):
        assert "hunter2" not in text and "k3y" not in text


def test_redaction() -> None:
    assert redact_url("https://user:pw@host:9200/x") == "https://host:9200/x"
    assert redact_url("http://host:9200") == "http://host:9200"
    assert redact_text("GET https://u:secret@h:1/ failed (secret)", ("secret",)) == (
        "GET https://h:1/ failed (***)"
    )
    with pytest.raises(ConfigError) as exc:
        ConnectionSettings(urls=("ftp://user:pw@h",))
    assert "pw" not in str(exc.value)


def test_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[connection]\nurl = ["https://n1:9200", "https://n2:9200"]\n'
        'username = "admin"\npassword = "pw"\nverify_certs = false\ntimeout = 3\n'
    )
    s = load_connection({}, config_path=cfg, env={})
    assert s.urls == ("https://n1:9200", "https://n2:9200")
    assert s.username == "admin" and s.password == Secret("pw")
    assert s.verify_certs is False and s.timeout == 3.0
    # the environment beats the file, flags beat the environment
    s2 = load_connection(
        {"username": "flag"}, config_path=cfg, env={"XLIDX_USERNAME": "env", "XLIDX_TIMEOUT": "9"}
    )
    assert s2.username == "flag" and s2.timeout == 9.0
    # XLIDX_CONFIG names the file when --config is absent
    assert load_connection({}, env={"XLIDX_CONFIG": str(cfg)}).username == "admin"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[connection\n", "not valid TOML"),
        ('[connection]\nhost = "x"\n', "unknown key"),
        ('connection = "x"\n', "must be a table"),
        ('[connection]\ntimeout = "slow"\n', "must be a number"),
    ],
)
def test_bad_config_file(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_config_file(cfg)


def test_missing_and_binary_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(ConfigError, match=r"cannot read|not valid TOML"):
        read_config_file(bad)
