"""State shared by every command: connection flags from the root command, consoles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from xlidx.config import ConnectionSettings, load_connection

if TYPE_CHECKING:
    from xlidx.backends.base import Backend

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class CliState:
    flags: dict[str, Any] = field(default_factory=dict)
    config_path: Path | None = None
    verbose: bool = False

    def connection(self) -> ConnectionSettings:
        return load_connection(self.flags, config_path=self.config_path)

    def backend(self) -> Backend:
        """The configured cluster's backend (asks the cluster which engine it is, unless
        --backend / XLIDX_BACKEND says)."""
        from xlidx.backends import open_backend

        return open_backend(self.connection())


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
