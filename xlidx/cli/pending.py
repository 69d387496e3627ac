"""Commands whose place in the CLI is fixed but whose work is not built yet.

Each one says so in one line and exits 1 instead of pretending; the module disappears as
the worker command lands.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from xlidx.errors import XlidxError


class NotYetAvailable(XlidxError):
    """The command exists in the CLI's layout but is not built yet."""


_PENDING = {
    "worker": "Run a Celery worker for the translate/embed/write queues (not built yet).",
}


def _pending(name: str) -> Callable[[], None]:
    def command() -> None:
        raise NotYetAvailable(f"`xlidx {name}` is not available in this version of xlidx yet")

    command.__doc__ = _PENDING.get(name, f"`xlidx {name}` (not built yet).")
    return command


def register(app: typer.Typer) -> None:
    for name, help_text in _PENDING.items():
        app.command(
            name,
            help=help_text,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )(_pending(name))
