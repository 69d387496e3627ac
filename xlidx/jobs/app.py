"""The Celery app of the queues: broker, queues, routes and delivery semantics.

* Three queues: ``translate`` (CPU), ``embed`` (GPU) and ``write`` (I/O). A batch flows
  translate → embed → write as a chain; ``describe_model`` also goes to ``embed``, where the
  model is.
* At-least-once delivery: a message is acknowledged only after its task finished
  (``task_acks_late``), and requeued when the worker process running it dies
  (``task_reject_on_worker_lost``). Tasks are idempotent (fixed document ids, content hashes,
  batch results recorded once), so a second delivery changes nothing.
* Redis's visibility timeout exceeds the hard time limit plus the longest retry wait (checked
  by :class:`~xlidx.jobs.settings.QueueSettings`), and workers prefetch one message per
  process, so no running task, nor one waiting for its retry, is handed to a second worker; a
  message of a worker that vanished comes back after it.
* With RabbitMQ there is no visibility timeout: the messages a worker held come back as soon
  as its connection drops, and sends wait for the broker's confirmation. RabbitMQ's own
  ``consumer_timeout`` (server side) must exceed the hard limit plus the longest retry wait.
* Results are ignored except for ``describe_model``.

Importing this module builds nothing: :func:`get_app` builds the app from the environment on
first use (and keeps it); :func:`get_settings` gives the queue settings it was built with.
Worker processes load the app through :mod:`workers.app` (``celery -A workers.app``); the
tasks are found by name (``include=["workers.tasks"]``), so nothing here imports ``workers``.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from xlidx.jobs.settings import QUEUES, QueueSettings

ROUTES: dict[str, dict[str, str]] = {
    "xlidx.translate": {"queue": "translate"},
    "xlidx.embed": {"queue": "embed"},
    "xlidx.describe_model": {"queue": "embed"},
    "xlidx.calibrate": {"queue": "embed"},
    "xlidx.write": {"queue": "write"},
}


def celery_config(settings: QueueSettings) -> dict[str, Any]:
    """The app's configuration (pure)."""
    transport: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    broker_transport = dict(transport)
    if not settings.redis_broker:
        # RabbitMQ: a send returns once the broker has the message (publisher confirms), as
        # an LPUSH does with Redis; else a message can be lost in a broker crash after
        # ``ingest --queue`` reported it sent
        broker_transport = {"confirm_publish": True}
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "broker_transport_options": broker_transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_queues": [Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        "task_default_queue": "translate",
        "task_routes": ROUTES,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "task_ignore_result": True,
        "result_expires": 3600,
        "task_time_limit": settings.time_limit,
        "task_soft_time_limit": settings.soft_time_limit,
        "worker_prefetch_multiplier": 1,
        # a pool process preloads its models before it reports ready; the default 4 s is far
        # too short for that, and a process killed over it is replaced by one killed again
        "worker_proc_alive_timeout": 300.0,
        # True would make Celery record each cancelled task in the result backend, the very
        # Redis that just went away, which kills the worker; the running task finishes instead,
        # its acknowledgement fails, and the message comes back after the visibility timeout
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": True,
        "task_publish_retry_policy": {
            "max_retries": 5,
            "interval_start": 0.5,
            "interval_step": 1.0,
            "interval_max": 3.0,
        },
    }


def make_app(settings: QueueSettings | None = None) -> Celery:
    """A new app for ``settings`` (default: read from the environment)."""
    settings = settings or QueueSettings.from_env()
    app = Celery("xlidx", include=["workers.tasks"])
    app.conf.update(celery_config(settings))
    return app


_lock = threading.RLock()
_settings: QueueSettings | None = None
_app: Celery | None = None


def get_settings() -> QueueSettings:
    """The queue settings of this process, read from the environment once."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = QueueSettings.from_env()
        return _settings


def get_app() -> Celery:
    """This process's app, built from :func:`get_settings` on the first call."""
    global _app
    with _lock:
        if _app is None:
            _app = make_app(get_settings())
        return _app
