"""Frozen settings objects, and the one place that reads them from files and the environment.

Connection settings are resolved in three layers, later ones winning:

1. the TOML config file (``--config``, else ``$XLIDX_CONFIG``, else ``~/.config/xlidx/config.toml``
   when it exists), table ``[connection]``;
2. the environment: ``XLIDX_URL`` (comma-separated for several nodes), ``XLIDX_USERNAME``,
   ``XLIDX_PASSWORD``, ``XLIDX_API_KEY``, ``XLIDX_CA_CERTS``, ``XLIDX_CLIENT_CERT``,
   ``XLIDX_CLIENT_KEY``, ``XLIDX_VERIFY_CERTS`` (true/false), ``XLIDX_TIMEOUT`` (seconds);
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
DEFAULT_CONFIG_PATH = Path("~/.config/xlidx/config.toml")


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

    def __post_init__(self) -> None:
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
}


def _coerce(key: str, value: Any, name: str) -> Any:
    """Parse one setting; ``name`` is how the user spelled it (env var, flag, file key)."""
    if key == "urls":
        return _parse_urls(name, value)
    if key == "verify_certs":
        return _parse_bool(name, value)
    if key == "timeout":
        return _parse_timeout(name, value)
    if key in ("password", "api_key"):
        return Secret(str(value))
    if key in ("ca_certs", "client_cert", "client_key"):
        return Path(str(value)).expanduser()
    return str(value)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read the ``[connection]`` table of a TOML config file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("connection", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [connection] must be a table")
    # "url" is accepted as a friendlier spelling of "urls"
    if "url" in section:
        section = dict(section)
        section["urls"] = section.pop("url")
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
            merged[k] = _coerce(k, v, "--" + k.replace("_", "-")) if layer is flag_values else v
    return ConnectionSettings(**merged)


def load_connection(
    flags: Mapping[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """Read the config file and the environment, then apply flags. The edge that does I/O."""
    env = os.environ if env is None else env
    file_values: dict[str, Any] = {}
    if config_path is not None:
        file_values = read_config_file(config_path.expanduser())
    elif env.get("XLIDX_CONFIG"):
        file_values = read_config_file(Path(env["XLIDX_CONFIG"]).expanduser())
    else:
        default = DEFAULT_CONFIG_PATH.expanduser()
        if default.is_file():
            file_values = read_config_file(default)
    return resolve_connection(file_values=file_values, env_values=read_env(env), flag_values=flags)


def with_urls(settings: ConnectionSettings, *urls: str) -> ConnectionSettings:
    """A copy of ``settings`` pointing at other URLs."""
    return replace(settings, urls=tuple(urls))
