"""The module ``celery -A workers.app worker`` loads: the app of :mod:`xlidx.jobs.app`.

The app (queues, routes, delivery semantics) is built by :mod:`xlidx.jobs.app`, the client
side's own module; this one only hands it to Celery. Importing it builds nothing: the
attributes ``app`` and ``settings`` are built on first access (what ``celery -A`` looks for),
as by :func:`get_app` and :func:`get_settings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xlidx.jobs.app import ROUTES, celery_config, get_app, get_settings, make_app

if TYPE_CHECKING:  # built on first access by __getattr__ below
    from celery import Celery

    from xlidx.jobs.settings import QueueSettings

    app: Celery
    settings: QueueSettings

__all__ = ["ROUTES", "app", "celery_config", "get_app", "get_settings", "make_app", "settings"]


def __getattr__(name: str) -> Any:
    """``workers.app.app`` and ``workers.app.settings``, built on first access (PEP 562)."""
    if name == "app":
        return get_app()
    if name == "settings":
        return get_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
