"""What the HTTP handlers call: the warm models, their batch queues, and the library's
workflows (:meth:`Index.embed <xlidx.workflows.index.Index.embed>`,
:meth:`Index.search <xlidx.workflows.index.Index.search>`, the translator and the detector).
Nothing here parses HTTP; :mod:`xlidx.serve.app` does.

Model work (encoding, detection, translation) runs on one model thread, so that concurrent
requests never oversubscribe the cores or the GPU: one service process per GPU. Searches run
on a pool of their own (mostly waiting on the cluster); their query encoding takes the
model's lock like any other use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from xlidx.errors import ConfigError, IndexNotFound, XlidxError
from xlidx.serve.batching import Batcher, Observe
from xlidx.serve.settings import ServeSettings

if TYPE_CHECKING:
    from xlidx.pipeline.detect import Detection, Detector
    from xlidx.pipeline.embed import Embedder
    from xlidx.pipeline.translate import Translator
    from xlidx.query.options import QueryOptions
    from xlidx.workflows import Cluster

log = logging.getLogger("xlidx.serve")
R = TypeVar("R")

#: ``input_type`` (Elasticsearch's ``custom`` service, and this API) → role.
INPUT_TYPES = {"ingest": "passage", "search": "query"}
INDEX_PREFIX = "xlidx/"
ENRICH_WAIT_MS = 10.0  # the least a document to enrich waits for others to ride with


class NotServed(XlidxError):
    """The request names a model the service does not serve (HTTP 404)."""


@dataclass(frozen=True)
class Target:
    """What a model name (with ``input_type``) resolves to: an index's role, or the plain
    ``--model`` in a role."""

    key: str  # the queue: "xlidx/<index>:<role>" or "<model>:<role>"
    index: str | None
    role: str


def parse_target(model: str | None, input_type: str | None, settings: ServeSettings) -> Target:
    """The :class:`Target` of a request (pure): ``xlidx/<index>:passage|query``,
    ``xlidx/<index>`` with ``input_type``, the ``--model`` (its path or its folder's name),
    or, with no model named, the ``--model`` else the first ``--index``."""
    from xlidx.spec import validate_index_name
    from xlidx.workflows.vectors import check_role

    if input_type is not None and input_type not in INPUT_TYPES:
        raise ConfigError(f"unknown input_type {input_type!r}: expected ingest or search")
    asked = INPUT_TYPES.get(input_type or "")
    if not model:
        if settings.model:
            model = settings.model
        elif settings.indices:
            model = INDEX_PREFIX + settings.indices[0]
        else:
            raise NotServed("no model named, and the service has no default (--model or --index)")
    if model.startswith(INDEX_PREFIX):
        name, _, role = model[len(INDEX_PREFIX) :].partition(":")
        validate_index_name(name)
        if role:
            check_role(role)
            if asked and asked != role:
                raise ConfigError(
                    f"model {model!r} is the {role} role, but input_type is {input_type!r}"
                )
        role = role or asked or "passage"
        return Target(f"{INDEX_PREFIX}{name}:{role}", name, role)
    if settings.model and model in (settings.model, _folder_name(settings.model)):
        role = asked or "passage"
        return Target(f"{_folder_name(settings.model)}:{role}", None, role)
    served = [f"{INDEX_PREFIX}<index>:passage|query"]
    if settings.model:
        served.insert(0, _folder_name(settings.model))
    raise NotServed(f"model {model!r} is not served here: use {' or '.join(served)}")


def _folder_name(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1]


class Service:
    """The warm state of one ``xlidx serve`` process."""

    def __init__(
        self,
        settings: ServeSettings,
        cluster: Cluster,
        observe: Observe,
        on_loaded: Callable[[str, float], None] = lambda _name, _seconds: None,
    ) -> None:
        """``observe`` hears of each batch (:data:`~xlidx.serve.batching.Observe`),
        ``on_loaded(model, seconds)`` of each model warmed up."""
        self.settings = settings
        self.cluster = cluster
        cluster.fresh_for = settings.fresh_for
        self.observe = observe
        self.on_loaded = on_loaded
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="xlidx-model")
        self.search_pool = ThreadPoolExecutor(
            settings.search_threads, thread_name_prefix="xlidx-search"
        )
        self.batchers: dict[str, Batcher[Any]] = {}
        self.status = "loading"  # → "ok", or "failed"
        self.error: str | None = None
        self.load_seconds: dict[str, float] = {}
        self._detectors: dict[str, Detector] = {}
        self._languages: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    # -- start and stop ------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load every model the settings name, and encode once with each (on the model thread,
        before ``/health`` says ok)."""
        try:
            if self.settings.model:
                t0 = time.perf_counter()
                self.plain_model().encode_document(["warm-up"])
                self._loaded(_folder_name(self.settings.model), time.perf_counter() - t0)
            for name in self.settings.indices:
                t0 = time.perf_counter()
                index = self.cluster.index(name)
                for role in ("passage", "query"):
                    index.embed(["warm-up"], role, device=self.settings.device)
                self._loaded(INDEX_PREFIX + name, time.perf_counter() - t0)
            self.status = "ok"
        except Exception as exc:
            self.status, self.error = "failed", str(exc).splitlines()[0] if str(exc) else repr(exc)
            log.error("loading the models failed: %s", self.error)

    def _loaded(self, name: str, seconds: float) -> None:
        self.load_seconds[name] = seconds
        self.on_loaded(name, seconds)

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.close()
        self.model_thread.shutdown(wait=True)
        self.search_pool.shutdown(wait=True)

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "models": sorted(self.load_seconds)}
        if self.error:
            out["error"] = self.error
        return out

    # -- embeddings ----------------------------------------------------------------------------
    def plain_model(self) -> Embedder:
        if not self.settings.model:
            raise NotServed("the service was started without --model")
        return self.cluster.embedder(self.settings.model, self.settings.device)

    async def embed(self, target: Target, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` as ``target`` makes them (float32 rows), through its batch
        queue. An index is read (and its absence found) on the search pool first, so that
        the model thread never waits on the cluster and no queue is made for a name that is
        no index."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if target.index is not None:
            await self._read_index(target.index)
        batcher = self._batcher(target.key, lambda: self._embed_fn(target))
        rows = await batcher.submit(texts)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)

    async def _read_index(self, name: str) -> None:
        """What the index's vectors need from the cluster (its state, calibration and
        languages), read now unless fresh; a name that is no index is forgotten."""

        def read() -> None:
            facts = self.cluster.index(name).searcher(self.settings.device).facts
            facts.state()
            facts.languages()

        await self._in_pool(lambda: self._forgetting(name, read))

    def _forgetting(self, name: str, fn: Callable[[], R]) -> R:
        try:
            return fn()
        except IndexNotFound:
            self.cluster.forget_index(name)
            raise

    def _embed_fn(self, target: Target) -> Callable[[list[str]], np.ndarray]:
        from xlidx.workflows.vectors import raw_vectors

        device = self.settings.device
        if target.index is not None:
            index = self.cluster.index(target.index)
            return lambda texts: np.asarray(
                index.embed(texts, target.role, device=device), dtype=np.float32
            )
        return lambda texts: np.asarray(raw_vectors(self.plain_model(), texts, target.role))

    def models(self) -> list[str]:
        """The model names this service answers to now (OpenAI's ``GET /v1/models``): the
        ``--model``, and both roles of every index named or used so far."""
        names = [_folder_name(self.settings.model)] if self.settings.model else []
        indices = dict.fromkeys([*self.settings.indices, *self.cluster.index_names()])
        return names + [
            f"{INDEX_PREFIX}{i}:{role}" for i in indices for role in ("passage", "query")
        ]

    def model_name(self, target: Target) -> str:
        """The name an answer reports its vectors under."""
        if target.index is not None:
            return target.key
        return _folder_name(self.settings.model or "")

    async def enrich(
        self, index: str, documents: Sequence[tuple[str | None, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """What ingest adds to each document in ``index``
        (:func:`~xlidx.workflows.enrich.enrich`), through the index's enrichment queue: the
        documents of concurrent requests (the cluster's ingest pipeline sends one per
        request) are enriched together, as ingest's batches are."""
        from xlidx.workflows.enrich import enrich

        if not documents:
            return []
        await self._read_index(index)
        device = self.settings.device

        def make() -> Callable[[list[Any]], list[dict[str, Any]]]:
            target = self.cluster.index(index)
            return lambda docs: [e.to_json() for e in enrich(target, docs, device=device)]

        # the cluster sends a bulk request's documents one by one, at once: a short wait
        # lets the first ones of a bulk ride with the rest (measured: BENCHMARKS.md)
        batcher = self._batcher(f"enrich:{index}", make, min_wait_ms=ENRICH_WAIT_MS)
        return await batcher.submit(documents)

    # -- translation and detection -------------------------------------------------------------
    def translator(self) -> Translator:
        return self.cluster.translator(self.settings.device)

    def detector(self, which: str) -> Detector:
        """``"any"``: among every language lingua knows; ``"source"``: among the languages the
        installed packages translate from (``source: "auto"``). Made on the model thread
        (scanning the packages may wait on a package being loaded)."""
        with self._lock:
            if which not in self._detectors:
                from xlidx.pipeline.detect import Detector
                from xlidx.workflows.translate import source_detector

                self._detectors[which] = (
                    Detector() if which == "any" else source_detector(self.translator())
                )
            return self._detectors[which]

    async def detect(self, texts: Sequence[str], which: str = "any") -> list[Detection]:
        return await self._on_model_thread(lambda: self.detector(which).detections(list(texts)))

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """``texts`` from ``source`` into ``target``, through the pair's batch queue (a pair
        no package serves: :class:`~xlidx.errors.ModelError`, before any queueing)."""
        translator = self.translator()
        await self._on_model_thread(lambda: translator.route(source, target))
        key = f"translate:{source}>{target}"
        batcher = self._batcher(key, lambda: lambda t: translator.translate(t, source, target))
        return await batcher.submit(texts)

    async def translate_auto(
        self, texts: Sequence[str], target: str
    ) -> tuple[list[str], list[Detection]]:
        """``texts`` into ``target``, each from the language detected for it
        (:func:`~xlidx.workflows.translate.by_source`); the translations and detections."""
        from xlidx.workflows.translate import by_source

        found = await self.detect(texts, "source")
        out = [""] * len(texts)
        for src, at in by_source(found).items():
            done = await self.translate([texts[i] for i in at], src, target)
            for i, text in zip(at, done, strict=True):
                out[i] = text
        return out, found

    async def languages(self) -> list[dict[str, Any]]:
        """The installed languages and their targets (read once: packages installed later
        are seen after a restart)."""
        if self._languages is None:
            from xlidx.workflows.translate import language_name, language_targets

            targets = await self._on_model_thread(lambda: language_targets(self.translator()))
            self._languages = [
                {"code": c, "name": language_name(c), "targets": t} for c, t in targets.items()
            ]
        return self._languages

    # -- the cluster ---------------------------------------------------------------------------
    async def search(self, index: str, options: QueryOptions) -> dict[str, Any]:
        """``xlidx query --json``'s answer for ``options`` on ``index``."""
        query = options.to_query()

        def run() -> dict[str, Any]:
            result = self.cluster.index(index).search(
                query, translate=options.translate_query, explain=options.explain,
                retry_for=self.settings.search_retry_for, device=self.settings.device,
            )  # fmt: skip
            return result.to_json(options.explain)

        return await self._in_pool(lambda: self._forgetting(index, run))

    async def index_status(self, name: str) -> dict[str, Any]:
        def status() -> dict[str, Any]:
            return self.cluster.index(name).status().to_json()

        return await self._in_pool(lambda: self._forgetting(name, status))

    async def indices(self) -> list[dict[str, Any]]:
        return await self._in_pool(lambda: [r.to_json() for r in self.cluster.indices()])

    # -- plumbing ------------------------------------------------------------------------------
    def _batcher(
        self, key: str, make: Callable[[], Callable[[list[Any]], Any]], *, min_wait_ms: float = 0
    ) -> Batcher[Any]:
        if key not in self.batchers:
            s = self.settings
            wait = max(s.max_wait_ms, min_wait_ms) / 1000
            self.batchers[key] = Batcher(
                key, make(), executor=self.model_thread, max_batch=s.max_batch,
                max_wait=wait, max_queued=s.max_queued, observe=self.observe,
            )  # fmt: skip
        return self.batchers[key]

    async def _on_model_thread(self, fn: Callable[[], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self.model_thread, fn)

    async def _in_pool(self, fn: Callable[[], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self.search_pool, fn)
