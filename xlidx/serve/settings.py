"""What ``xlidx serve`` is started with (checked when made: :class:`~xlidx.errors.ConfigError`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from xlidx.errors import ConfigError


@dataclass(frozen=True)
class ServeSettings:
    """The service's knobs. Batching: a model call takes up to ``max_batch`` texts (which the
    model sorts by length and runs in sub-batches of its own batch size, 32), those
    that arrived while the model was busy (and, with ``max_wait_ms``, those that arrive
    within that many milliseconds while the batch is not full); ``max_queued`` texts wait
    per queue at most (more: 429). Request limits (more: 413): ``max_items`` texts,
    ``max_chars`` characters in all, ``max_body_bytes`` bytes of body."""

    host: str = "127.0.0.1"
    port: int = 8765
    model: str | None = None
    indices: tuple[str, ...] = ()
    device: str = "auto"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    max_batch: int = 128
    max_wait_ms: float = 0.0
    max_queued: int = 4096
    max_items: int = 2048
    max_chars: int = 2_000_000
    max_body_bytes: int = 16 * 1024 * 1024
    search_threads: int = 8
    search_retry_for: float = 10.0
    fresh_for: float = 5.0
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535, got {self.port}")
        for name in ("max_batch", "max_queued", "max_items", "max_chars", "max_body_bytes",
                     "search_threads"):  # fmt: skip
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        if self.max_items > self.max_queued:
            raise ConfigError(
                f"--max-items ({self.max_items}) must not pass --max-queued ({self.max_queued}): "
                "a request that large could never be queued"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ConfigError("TLS needs both --ssl-certfile and --ssl-keyfile")
        for path in (self.ssl_certfile, self.ssl_keyfile):
            if path is not None and not path.is_file():
                raise ConfigError(f"TLS file not found: {path}")
        if any(not k.strip() for k in self.api_keys):
            raise ConfigError("an API key is empty")

    @property
    def loopback(self) -> bool:
        """Whether the service binds to a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certfile else "http"
