"""Frozen settings objects, and the one place that reads them from files and the environment.

Connection settings are resolved in three layers, later ones winning:

1. the TOML config file (``--config``, else ``$XLIDX_CONFIG``, else ``~/.config/xlidx/config.toml``
   when it exists), table ``[connection]``;
2. the environment: ``XLIDX_URL`` (comma-separated for several nodes), ``XLIDX_USERNAME``,
   ``XLIDX_PASSWORD``, ``XLIDX_API_KEY``, ``XLIDX_CA_CERTS``, ``XLIDX_CLIENT_CERT``,
   ``XLIDX_CLIENT_KEY``, ``XLIDX_VERIFY_CERTS`` (true/false), ``XLIDX_TIMEOUT`` (seconds),
   ``XLIDX_RETRY_FOR`` (how long a batch job waits out an unavailable cluster: ``90s``, ``10m``),
   ``XLIDX_BACKEND`` (``opensearch`` or ``elasticsearch``; detected from the cluster when unset);
3. command-line flags.

Secrets are wrapped in :class:`Secret`, whose ``repr``/``str`` never show the value.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from xlidx.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_URL = "http://127.0.0.1:9200"
ENGINES = ("opensearch", "elasticsearch")
DEFAULT_CONFIG_PATH = Path("~/.config/xlidx/config.toml")
DEFAULT_RETRY_FOR = 600.0  # 10 minutes: longer than a rolling restart of a node


class Secret:
    """A string that does not show itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach a cluster. Immutable; build variants with :func:`dataclasses.replace`."""

    urls: tuple[str, ...] = (DEFAULT_URL,)
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    api_key: Secret | None = field(default=None, repr=False)
    ca_certs: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    verify_certs: bool = True
    timeout: float = 30.0
    retry_for: float = DEFAULT_RETRY_FOR  # seconds a batch job waits out an unavailable cluster
    engine: str | None = None  # "opensearch" | "elasticsearch"; None = detect from the cluster

    def __post_init__(self) -> None:
        if self.engine is not None and self.engine not in ENGINES:
            raise ConfigError(f"unknown backend {self.engine!r}: expected {' or '.join(ENGINES)}")
        if not self.urls:
            raise ConfigError("no cluster URL configured")
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"invalid cluster URL {redact_url(url)!r}: expected http(s)://host[:port]"
                )
            try:
                parts.port  # noqa: B018 - raises ValueError on a bad port
            except ValueError:
                raise ConfigError(f"invalid port in cluster URL {redact_url(url)!r}") from None
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {self.timeout}")
        if self.retry_for < 0:
            raise ConfigError(f"retry_for must be 0 or more seconds, got {self.retry_for}")
        if self.password is not None and self.username is None:
            raise ConfigError("a password is set but no username (XLIDX_USERNAME / --username)")
        if self.client_key is not None and self.client_cert is None:
            raise ConfigError("a client key is set but no client certificate (--client-cert)")

    @property
    def display_urls(self) -> str:
        """The URLs, with any credentials embedded in them removed."""
        return ", ".join(redact_url(u) for u in self.urls)


_URL_USERINFO = re.compile(r"//[^/@\s]*@")


def redact_url(url: str) -> str:
    """Drop ``user:password@`` from a URL so it can be shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove URL userinfo and every given secret value from free text (error messages)."""
    out = _URL_USERINFO.sub("//", text)
    for s in secrets:
        if s:
            out = out.replace(s, "***")
    return out


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _parse_timeout(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(name: str, value: Any) -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``10min``, ``2h`` or ``500ms`` (pure)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if m is None:
            raise ConfigError(f"{name} must be a duration such as 90s, 10m or 1h, got {value!r}")
        seconds = float(m.group(1)) * _UNIT_SECONDS[(m.group(2) or "s").lower()]
    if seconds < 0:
        raise ConfigError(f"{name} must be 0 or more, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``600`` → ``10m``, ``90`` → ``1m30s``, ``2.5`` → ``2.5s`` (pure)."""
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{rest}s" if rest else "")


def _parse_urls(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        raise ConfigError(f"{name} must be a URL or a list of URLs")
    urls = tuple(u for u in items if u)
    if not urls:
        raise ConfigError(f"{name} is empty")
    return urls


_KEYS = (
    "urls",
    "username",
    "password",
    "api_key",
    "ca_certs",
    "client_cert",
    "client_key",
    "verify_certs",
    "timeout",
    "retry_for",
    "engine",
)

ENV_NAMES: Mapping[str, str] = {
    "urls": "XLIDX_URL",
    "username": "XLIDX_USERNAME",
    "password": "XLIDX_PASSWORD",
    "api_key": "XLIDX_API_KEY",
    "ca_certs": "XLIDX_CA_CERTS",
    "client_cert": "XLIDX_CLIENT_CERT",
    "client_key": "XLIDX_CLIENT_KEY",
    "verify_certs": "XLIDX_VERIFY_CERTS",
    "timeout": "XLIDX_TIMEOUT",
    "retry_for": "XLIDX_RETRY_FOR",
    "engine": "XLIDX_BACKEND",
}


def _coerce(key: str, value: Any, name: str) -> Any:
    """Parse one setting; ``name`` is how the user spelled it (env var, flag, file key)."""
    if key == "urls":
        return _parse_urls(name, value)
    if key == "verify_certs":
        return _parse_bool(name, value)
    if key == "timeout":
        return _parse_timeout(name, value)
    if key == "retry_for":
        return parse_duration(name, value)
    if key in ("password", "api_key"):
        return Secret(str(value))
    if key in ("ca_certs", "client_cert", "client_key"):
        return Path(str(value)).expanduser()
    if key == "engine":
        return str(value).strip().lower()
    return str(value)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read the ``[connection]`` table of a TOML config file."""
    data = _read_toml(path)
    section = data.get("connection", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [connection] must be a table")
    # "url" is accepted as a friendlier spelling of "urls"
    if "url" in section:
        section = dict(section)
        section["urls"] = section.pop("url")
    if "backend" in section:
        section = dict(section)
        section["engine"] = section.pop("backend")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) in [connection]: {', '.join(unknown)}"
        )
    return {k: _coerce(k, v, f"config file {path}: {k}") for k, v in section.items()}


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The connection settings present in an environment mapping."""
    out: dict[str, Any] = {}
    for key, var in ENV_NAMES.items():
        raw = env.get(var)
        if raw is not None and raw != "":
            out[key] = _coerce(key, raw, var)
    return out


def resolve_connection(
    *,
    file_values: Mapping[str, Any] | None = None,
    env_values: Mapping[str, Any] | None = None,
    flag_values: Mapping[str, Any] | None = None,
) -> ConnectionSettings:
    """Merge the three layers (pure: no I/O). ``None`` flag values mean 'not given'."""
    merged: dict[str, Any] = {}
    for layer in (file_values or {}, env_values or {}, flag_values or {}):
        for k, v in layer.items():
            if v is None:
                continue
            flag = "--backend" if k == "engine" else "--" + k.replace("_", "-")
            merged[k] = _coerce(k, v, flag) if layer is flag_values else v
    return ConnectionSettings(**merged)


def load_connection(
    flags: Mapping[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """Read the config file and the environment, then apply flags. The edge that does I/O."""
    env = os.environ if env is None else env
    path = config_file(config_path, env)
    file_values = read_config_file(path) if path is not None else {}
    return resolve_connection(file_values=file_values, env_values=read_env(env), flag_values=flags)


def config_file(config_path: Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file in use: ``--config``, else ``$XLIDX_CONFIG``, else the default path
    where it exists."""
    if config_path is not None:
        return config_path.expanduser()
    if env.get("XLIDX_CONFIG"):
        return Path(env["XLIDX_CONFIG"]).expanduser()
    default = DEFAULT_CONFIG_PATH.expanduser()
    return default if default.is_file() else None


# --- a running `xlidx serve`, as its clients reach it ---------------------------------------

ENV_SERVE_URL = "XLIDX_SERVE_URL"
ENV_SERVE_API_KEY = "XLIDX_SERVE_API_KEY"  # the key a client sends
ENV_SERVE_API_KEYS = "XLIDX_SERVE_API_KEYS"  # the keys a service accepts, comma-separated


@dataclass(frozen=True)
class ServeClientSettings:
    """Where a client finds a running ``xlidx serve`` (``xlidx query --serve``)."""

    url: str | None = None
    api_key: Secret | None = field(default=None, repr=False)


def serve_client_settings(
    config_path: Path | None = None, env: Mapping[str, str] | None = None
) -> ServeClientSettings:
    """The ``[serve]`` table of the config file (``url``, ``api_key``), then
    ``XLIDX_SERVE_URL`` and ``XLIDX_SERVE_API_KEY``."""
    env = _environ(env)
    path = config_file(config_path, env)
    table = _read_toml(path).get("serve", {}) if path is not None else {}
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [serve] must be a table")
    unknown = sorted(set(table) - {"url", "api_key"})
    if unknown:
        raise ConfigError(f"config file {path}: unknown key(s) in [serve]: {', '.join(unknown)}")
    url = env.get(ENV_SERVE_URL) or table.get("url")
    key = env.get(ENV_SERVE_API_KEY) or table.get("api_key")
    if url is not None:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"invalid serve URL {redact_url(str(url))!r}: expected http(s)://host[:port]"
            )
    return ServeClientSettings(
        url=str(url) if url else None, api_key=Secret(str(key)) if key else None
    )


def serve_api_keys(env: Mapping[str, str] | None = None) -> list[str]:
    """The API keys ``XLIDX_SERVE_API_KEYS`` gives a service (comma-separated)."""
    raw = _environ(env).get(ENV_SERVE_API_KEYS, "")
    return [k.strip() for k in raw.split(",") if k.strip()]


def with_urls(settings: ConnectionSettings, *urls: str) -> ConnectionSettings:
    """A copy of ``settings`` pointing at other URLs."""
    return replace(settings, urls=tuple(urls))


# --- the rest of the environment ---------------------------------------------------------------
# Every variable xlidx reads is read by one of the functions below (each pure given ``env``,
# which defaults to ``os.environ``); other modules call them rather than ``os.environ``.


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


ENV_EMBED_MODEL = "XLIDX_EMBED_MODEL"
ENV_MAPPINGS_DIR = "XLIDX_MAPPINGS_DIR"
ENV_WORKER_QUEUES = "XLIDX_WORKER_QUEUES"
ENV_WORKER_DEVICE = "XLIDX_WORKER_DEVICE"
DEFAULT_XLIDX_HOME = "~/.cache/xlidx"

QUEUE_ENV_NAMES: tuple[str, ...] = (
    "XLIDX_BROKER_URL",
    "XLIDX_STATE_URL",
    "XLIDX_RESULT_BACKEND",
    "XLIDX_VISIBILITY_TIMEOUT",
    "XLIDX_TASK_TIME_LIMIT",
    "XLIDX_TASK_SOFT_TIME_LIMIT",
    "XLIDX_RETRY_BACKOFF_MAX",
    "XLIDX_TASK_MAX_RETRIES",
    "XLIDX_DESCRIBE_TIMEOUT",
    "XLIDX_RECOVER_AFTER",
)


def env_embed_model(env: Mapping[str, str] | None = None) -> str | None:
    """``$XLIDX_EMBED_MODEL``, the default embedding model; None when unset or empty."""
    return _environ(env).get(ENV_EMBED_MODEL) or None


def env_mappings_dir(env: Mapping[str, str] | None = None) -> str | None:
    """``$XLIDX_MAPPINGS_DIR``, where the mapping templates are; None when unset or empty."""
    return _environ(env).get(ENV_MAPPINGS_DIR) or None


def xlidx_home(env: Mapping[str, str] | None = None) -> Path:
    """``$XLIDX_HOME`` (default ``~/.cache/xlidx``): downloads, models, caches."""
    return Path(_environ(env).get("XLIDX_HOME") or DEFAULT_XLIDX_HOME).expanduser()


def queue_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The queue variables (:data:`QUEUE_ENV_NAMES`) that are set, as given; parsed and
    checked by :meth:`xlidx.jobs.settings.QueueSettings.from_env`."""
    source = _environ(env)
    return {name: source[name] for name in QUEUE_ENV_NAMES if name in source}


@dataclass(frozen=True)
class WorkerEnv:
    """What ``xlidx worker`` hands its pool processes (and what a plain
    ``celery -A workers.app worker`` may be given): None = not set."""

    device: str | None = None
    queues: tuple[str, ...] | None = None
    model: str | None = None


def worker_env(env: Mapping[str, str] | None = None) -> WorkerEnv:
    """``XLIDX_WORKER_DEVICE`` (taken even when empty), ``XLIDX_WORKER_QUEUES``
    (comma-separated; ignored when empty) and ``XLIDX_EMBED_MODEL`` (ignored when empty)."""
    source = _environ(env)
    raw_queues = source.get(ENV_WORKER_QUEUES)
    return WorkerEnv(
        device=source.get(ENV_WORKER_DEVICE),
        queues=tuple(q for q in raw_queues.split(",") if q) if raw_queues else None,
        model=env_embed_model(source),
    )


_HUB_TRUE = {"1", "on", "yes", "true"}
DEFAULT_HF_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class HubSettings:
    """The Hugging Face variables xlidx honours."""

    offline: bool  # HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is 1/on/yes/true
    endpoint: str  # HF_ENDPOINT (default https://huggingface.co), without a trailing slash
    sentence_transformers_home: str | None  # SENTENCE_TRANSFORMERS_HOME
    hub_cache: Path  # HF_HUB_CACHE, default $HF_HOME/hub (HF_HOME: ~/.cache/huggingface)


def hub_settings(env: Mapping[str, str] | None = None) -> HubSettings:
    """:class:`HubSettings` from the environment."""
    source = _environ(env)
    offline = any(
        source.get(n, "").strip().lower() in _HUB_TRUE
        for n in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    hf_home = Path(source.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    return HubSettings(
        offline=offline,
        endpoint=source.get("HF_ENDPOINT", DEFAULT_HF_ENDPOINT).rstrip("/"),
        sentence_transformers_home=source.get("SENTENCE_TRANSFORMERS_HOME"),
        hub_cache=Path(source.get("HF_HUB_CACHE", hf_home / "hub")).expanduser(),
    )


@dataclass(frozen=True)
class ArgosDirs:
    """The variables that say where argos-translate keeps its files."""

    packages_dir: Path | None  # $ARGOS_PACKAGES_DIR; None when unset or empty
    home: str | None  # $HOME; the user's home directory when unset or empty
    xdg_config_home: str | None
    xdg_data_home: str | None

    def _home(self) -> Path:
        return Path(self.home or Path.home())

    @property
    def config_home(self) -> Path:
        """``$XDG_CONFIG_HOME``, default ``$HOME/.config``."""
        return Path(self.xdg_config_home or self._home() / ".config")

    @property
    def data_home(self) -> Path:
        """``$XDG_DATA_HOME``, default ``$HOME/.local/share``."""
        return Path(self.xdg_data_home or self._home() / ".local" / "share")


def argos_dirs(env: Mapping[str, str] | None = None) -> ArgosDirs:
    """:class:`ArgosDirs` from the environment."""
    source = _environ(env)
    packages = source.get("ARGOS_PACKAGES_DIR")
    return ArgosDirs(
        packages_dir=Path(packages).expanduser() if packages else None,
        home=source.get("HOME"),
        xdg_config_home=source.get("XDG_CONFIG_HOME"),
        xdg_data_home=source.get("XDG_DATA_HOME"),
    )


def env_dev_dir(env: Mapping[str, str] | None = None) -> str | None:
    """``$XLIDX_DEV_DIR``, where the dev nodes are installed and keep their data; None when
    unset or empty."""
    return _environ(env).get("XLIDX_DEV_DIR") or None


def env_values(names: tuple[str, ...], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``names`` that are set and not empty (e.g. ``JAVA_HOME``)."""
    e = _environ(env)
    return {n: e[n] for n in names if e.get(n)}


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment to start another program with (the dev nodes' scripts)."""
    return dict(_environ(env))
