"""What a worker process keeps between tasks: models, clients and settings, loaded once.

``xlidx worker`` calls :func:`configure` before Celery forks its pool; each pool process
then preloads what its queues need in ``worker_process_init`` (never per task). Anything a
task asks for that was not preloaded (another model named by a job) is loaded on first use
and kept.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery.signals import after_setup_logger, worker_process_init

from xlidx.backends.base import Backend
from xlidx.config import (
    ENV_EMBED_MODEL,
    ENV_WORKER_DEVICE,
    ENV_WORKER_QUEUES,
    ConnectionSettings,
    load_connection,
    worker_env,
)
from xlidx.jobs.settings import QUEUES, QueueSettings
from xlidx.jobs.store import JobStore

log = logging.getLogger("xlidx.worker")

# what ``xlidx worker`` hands its pool processes through the environment
ENV_QUEUES = ENV_WORKER_QUEUES
ENV_DEVICE = ENV_WORKER_DEVICE
ENV_MODEL = ENV_EMBED_MODEL
CALIBRATION_TTL = 5.0  # seconds a write worker keeps an index's calibration before reading it


@dataclass
class Holder:
    connection: ConnectionSettings | None = None
    device: str = "auto"
    model: str | None = None
    queues: tuple[str, ...] = QUEUES
    _backend: Backend | None = None
    _store: JobStore | None = None
    _embedders: dict[str, Any] = field(default_factory=dict)
    _detectors: dict[tuple[tuple[str, ...], float], Any] = field(default_factory=dict)
    _translator: Any = None
    recorded_packages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _calibrations: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def settings(self) -> ConnectionSettings:
        if self.connection is None:
            self.connection = load_connection()
        return self.connection

    def queue_settings(self) -> QueueSettings:
        from xlidx.jobs.app import get_settings

        return get_settings()

    def backend(self) -> Backend:
        if self._backend is None:
            from xlidx.backends import open_backend

            self._backend = open_backend(self.settings())
        return self._backend

    def store(self) -> JobStore:
        if self._store is None:
            self._store = JobStore(self.queue_settings().state_url)
        return self._store

    def embedder(self, spec: str) -> Any:
        path = Path(spec).expanduser()
        if path.is_dir():  # one copy, however the directory is spelled
            spec = str(path.resolve())
        with self._lock:
            if spec not in self._embedders:
                from xlidx.pipeline.embed import load_embedder

                t0 = time.monotonic()
                embedder = load_embedder(spec, device=self.device)
                embedder.encode_document(["warm up"])  # load the weights now, not mid-batch
                log.info("loaded embedding model %s in %.1fs", spec, time.monotonic() - t0)
                self._embedders[spec] = embedder
            return self._embedders[spec]

    def calibration(self, index: str, *, fresh: bool = False) -> Any:
        """The calibration of xlidx index ``index`` (its ``_meta``), read again after
        ``CALIBRATION_TTL`` seconds: what the write tasks center new passages with."""
        from xlidx.indices.manage import resolve
        from xlidx.pipeline.calibration import from_index_meta

        now = time.monotonic()
        with self._lock:
            cached = self._calibrations.get(index)
            if cached is not None and not fresh and now - cached[0] < CALIBRATION_TTL:
                return cached[1]
        state = resolve(self.backend(), index)
        cal = from_index_meta(state.xlidx_meta) if state is not None else None
        with self._lock:
            self._calibrations[index] = (now, cal)
        return cal

    def forget_calibration(self, index: str) -> None:
        with self._lock:
            self._calibrations.pop(index, None)

    def detector(self, languages: Sequence[str], min_confidence: float) -> Any:
        key = (tuple(languages), float(min_confidence))
        with self._lock:
            if key not in self._detectors:
                from xlidx.pipeline.detect import Detector

                self._detectors[key] = Detector(languages, min_confidence=min_confidence)
            return self._detectors[key]

    def translator(self) -> Any:
        with self._lock:
            if self._translator is None:
                from xlidx.pipeline.translate import Translator
                from xlidx.pipeline.translation_cache import TranslationCache

                device = "cpu" if self.device == "mps" else self.device
                self._translator = Translator(device=device, cache=TranslationCache())
            return self._translator

    def preload(self) -> None:
        """Load what this worker's queues need, before the first task arrives."""
        if "embed" in self.queues and self.model:
            self.embedder(self.model)
        if "translate" in self.queues:
            from xlidx.pipeline.detect import DEFAULT_LANGUAGES, DEFAULT_MIN_CONFIDENCE

            self.detector(DEFAULT_LANGUAGES, DEFAULT_MIN_CONFIDENCE).preload()
            self.translator().installed()  # scan the installed packages once


holder = Holder()


def configure(
    *,
    connection: ConnectionSettings | None,
    device: str,
    model: str | None,
    queues: Sequence[str],
) -> None:
    """Set up this process's holder; pool processes forked later inherit it."""
    holder.connection = connection
    holder.device = device
    holder.model = model
    holder.queues = tuple(queues)
    os.environ[ENV_DEVICE] = device
    os.environ[ENV_QUEUES] = ",".join(queues)
    if model:
        os.environ[ENV_MODEL] = model


def _from_env() -> None:
    """For workers started by ``celery -A workers.app worker`` rather than ``xlidx worker``,
    and for the pool processes of both."""
    given = worker_env()
    if given.device is not None:
        holder.device = given.device
    if given.queues is not None:
        holder.queues = given.queues
    if given.model is not None:
        holder.model = given.model


@worker_process_init.connect
def _preload(**_: Any) -> None:
    _from_env()
    t0 = time.monotonic()
    try:
        holder.preload()
    except Exception as exc:
        log.error(
            "preloading failed (%s); tasks that need it will fail: %s", type(exc).__name__, exc
        )
        return
    log.info(
        "worker process ready in %.1fs (queues %s)", time.monotonic() - t0, ",".join(holder.queues)
    )


@after_setup_logger.connect
def _quiet(**_: Any) -> None:
    """Keep the log to one line per batch and stage: no payload dumps, no request lines."""
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    logging.getLogger("opensearch").setLevel(logging.WARNING)
