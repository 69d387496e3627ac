"""Where the dev node keeps its files.

* ``XLIDX_HOME`` (default ``~/.cache/xlidx``) holds downloads (``downloads/``) and, later,
  models. Nothing in it is needed to *run* a node once installed.
* ``XLIDX_DEV_DIR`` holds the installed node, its data, logs and pid files. OpenSearch refuses
  to run as root, so when xlidx runs as root the node runs as the unprivileged system user
  ``xlidx`` and this directory defaults to ``/var/lib/xlidx/dev`` (a root home directory is
  not readable by other users). Otherwise it defaults to ``$XLIDX_HOME/dev``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xlidx.devnode.artifacts import OPENSEARCH_VERSION

NODE_USER = "xlidx"


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def xlidx_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("XLIDX_HOME") or "~/.cache/xlidx").expanduser()


@dataclass(frozen=True)
class DevPaths:
    home: Path
    node_dir: Path
    port: int

    @classmethod
    def from_env(cls, port: int, env: Mapping[str, str] | None = None) -> DevPaths:
        env = os.environ if env is None else env
        home = xlidx_home(env)
        default_dir = Path("/var/lib/xlidx/dev") if is_root() else home / "dev"
        node_dir = Path(env.get("XLIDX_DEV_DIR") or default_dir).expanduser()
        return cls(home=home, node_dir=node_dir, port=port)

    @property
    def downloads(self) -> Path:
        return self.home / "downloads"

    @property
    def install_dir(self) -> Path:
        return self.node_dir / f"opensearch-{OPENSEARCH_VERSION}"

    @property
    def data_dir(self) -> Path:
        return self.node_dir / f"data-{self.port}"

    @property
    def logs_dir(self) -> Path:
        return self.node_dir / f"logs-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / f"opensearch-{self.port}.pid"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    def redis_dir(self, port: int) -> Path:
        return self.node_dir / f"redis-{port}"

    def redis_pid_file(self, port: int) -> Path:
        return self.node_dir / f"redis-{port}.pid"
