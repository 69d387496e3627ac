"""Where the dev node keeps its files.

* ``XLIDX_HOME`` (default ``~/.cache/xlidx``) holds downloads (``downloads/``) and, later,
  models. Nothing in it is needed to *run* a node once installed.
* ``XLIDX_DEV_DIR`` holds the installed node, its data, logs and pid files. OpenSearch refuses
  to run as root, so when xlidx runs as root the node runs as the unprivileged system user
  ``xlidx`` and this directory defaults to ``/var/lib/xlidx/dev`` (a root home directory is
  not readable by other users). Otherwise it defaults to ``$XLIDX_HOME/dev``.

Both engines share these two directories without sharing a file: OpenSearch keeps the
names it always had (``opensearch-2.19.1/``, ``data-PORT/``, ``logs-PORT/``,
``opensearch-PORT.pid``), Elasticsearch's are all prefixed (``elasticsearch-8.19.0/``,
``elasticsearch-data-PORT/``, ``elasticsearch-logs-PORT/``, ``elasticsearch-PORT.pid``), so
the two can run at once on different ports, and one never opens the other's data. Redis is
shared by both (keyed by its own port).

An OpenSearch node with ml-commons (``ml=True``, ``xlidx dev up --with-ml``) runs from an
install of its own, ``opensearch-2.19.1-ml/``, beside the plain one; its data, logs and pid
file are keyed by its port like any OpenSearch dev node's (one node per port, whichever
install it runs from: see :func:`xlidx.devnode.node.running_install`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xlidx.config import env_dev_dir
from xlidx.config import xlidx_home as config_home
from xlidx.devnode.engines import Engine, EngineSpec, engine_spec
from xlidx.errors import DevNodeError

NODE_USER = "xlidx"


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def xlidx_home(env: Mapping[str, str] | None = None) -> Path:
    return config_home(env)


@dataclass(frozen=True)
class DevPaths:
    home: Path
    node_dir: Path
    port: int
    engine: Engine = "opensearch"
    ml: bool = False  # OpenSearch with ml-commons, from its own install

    def __post_init__(self) -> None:
        engine_spec(self.engine)  # an unknown engine fails here, not at first use
        if self.ml and self.engine != "opensearch":
            raise DevNodeError(
                f"--with-ml (ml-commons) is an OpenSearch plugin: {self.spec.display} has none"
            )

    @classmethod
    def from_env(
        cls,
        port: int,
        env: Mapping[str, str] | None = None,
        engine: str = "opensearch",
        *,
        ml: bool = False,
    ) -> DevPaths:
        home = xlidx_home(env)
        default_dir = Path("/var/lib/xlidx/dev") if is_root() else home / "dev"
        node_dir = Path(env_dev_dir(env) or default_dir).expanduser()
        return cls(home=home, node_dir=node_dir, port=port, engine=engine_spec(engine).name, ml=ml)

    @property
    def spec(self) -> EngineSpec:
        return engine_spec(self.engine)

    @property
    def _prefix(self) -> str:
        # OpenSearch's names predate Elasticsearch support: existing installs keep their data
        return "" if self.engine == "opensearch" else f"{self.engine}-"

    @property
    def downloads(self) -> Path:
        return self.home / "downloads"

    @property
    def install_name(self) -> str:
        """``opensearch-2.19.1``, ``opensearch-2.19.1-ml`` with ml-commons."""
        return self.spec.install_name + ("-ml" if self.ml else "")

    @property
    def install_dir(self) -> Path:
        return self.node_dir / self.install_name

    @property
    def display(self) -> str:
        """How messages name the node: ``OpenSearch``, ``OpenSearch with ml-commons``."""
        return self.spec.display + (" with ml-commons" if self.ml else "")

    @property
    def data_dir(self) -> Path:
        return self.node_dir / f"{self._prefix}data-{self.port}"

    @property
    def logs_dir(self) -> Path:
        return self.node_dir / f"{self._prefix}logs-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / f"{self.engine}-{self.port}.pid"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    def redis_dir(self, port: int) -> Path:
        return self.node_dir / f"redis-{port}"

    def redis_pid_file(self, port: int) -> Path:
        return self.node_dir / f"redis-{port}.pid"
