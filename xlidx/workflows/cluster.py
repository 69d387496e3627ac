"""A connection to one cluster, opened on first use; :meth:`Cluster.index` names an index."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlidx.config import ConnectionSettings, load_connection
from xlidx.errors import ConfigError

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.pipeline.embed import Embedder
    from xlidx.pipeline.translate import Translator
    from xlidx.workflows.index import Index
    from xlidx.workflows.lifecycle import IndexRow


class Cluster:
    """The cluster xlidx works on. No I/O in the constructor: the backend (which asks the
    cluster which engine it is, unless the settings say) opens on first use.

    >>> cluster = Cluster.connect("http://127.0.0.1:9200")   # doctest: +SKIP
    >>> news = cluster.index("news")                          # doctest: +SKIP
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        settings: ConnectionSettings | None = None,
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._indices: dict[str, Index] = {}
        self._models: dict[tuple[str, str], Embedder] = {}
        self._translators: dict[str, Translator] = {}
        self._models_lock = threading.Lock()
        #: seconds what an index's searches read of it (version, calibration, languages) is
        #: trusted before it is read again; ``None``: until a workflow on this object changes
        #: it. A long-lived process (``xlidx serve``) sets it, to see other processes' changes.
        self.fresh_for: float | None = None

    @classmethod
    def connect(
        cls,
        *urls: str,
        config_path: Path | None = None,
        **flags: Any,
    ) -> Cluster:
        """Settings from ``urls`` and ``flags`` (the names of
        :class:`~xlidx.config.ConnectionSettings`: ``username``, ``password``, ``api_key``,
        ``ca_certs``, ``verify_certs``, ``timeout``, ``engine``, …), then ``XLIDX_*`` and the
        config file, as the CLI reads them."""
        from dataclasses import fields

        known = {f.name for f in fields(ConnectionSettings)}
        unknown = sorted(set(flags) - known)
        if unknown:
            raise ConfigError(
                f"unknown connection setting {', '.join(map(repr, unknown))}: expected "
                f"{', '.join(sorted(known))}"
            )
        given: dict[str, Any] = dict(flags)
        if urls:
            given["urls"] = list(urls)
        return cls(settings=load_connection(given, config_path=config_path))

    @classmethod
    def from_settings(cls, flags: Mapping[str, Any], config_path: Path | None = None) -> Cluster:
        """The CLI's way in: its root flags, then ``XLIDX_*`` and the config file."""
        return cls(settings=load_connection(dict(flags), config_path=config_path))

    @property
    def settings(self) -> ConnectionSettings:
        if self._settings is None:
            self._settings = (
                self._backend.settings if self._backend is not None else load_connection({})
            )
        return self._settings

    @property
    def backend(self) -> Backend:
        """The cluster's backend, opened on first use."""
        if self._backend is None:
            from xlidx.backends import open_backend

            self._backend = open_backend(self.settings)
        return self._backend

    def index(self, name: str) -> Index:
        """The xlidx index (alias) ``name``; nothing is read until a workflow runs. The same
        object each time, so that the models its searches load are kept."""
        from xlidx.workflows.index import Index

        if name not in self._indices:
            self._indices[name] = Index(self, name)
        return self._indices[name]

    def index_names(self) -> list[str]:
        """The names :meth:`index` was asked for so far, in order."""
        return list(self._indices)

    def forget_index(self, name: str) -> None:
        """Drop the :class:`Index` kept for ``name`` (one that turned out not to exist)."""
        self._indices.pop(name, None)

    def translator(self, device: str = "auto") -> Translator:
        """The translator of the installed argos packages on ``device``, with the
        translation cache, one per process for this cluster (its searches' query translation
        and ``xlidx serve`` share it). ``mps``: CTranslate2 has no MPS, so the CPU; ``cuda:N``:
        CUDA."""
        from xlidx.pipeline.translate import Translator
        from xlidx.pipeline.translation_cache import TranslationCache

        device = "cpu" if device == "mps" else "cuda" if device.startswith("cuda") else device
        with self._models_lock:
            if device not in self._translators:
                self._translators[device] = Translator(device=device, cache=TranslationCache())
            return self._translators[device]

    def embedder(self, source: str, device: str = "auto") -> Embedder:
        """The embedding model ``source`` names on ``device``
        (:func:`~xlidx.pipeline.embed.load_embedder`), one per process for this cluster: its
        indices on the same model share it. Weights load on first use."""
        from xlidx.pipeline.embed import load_embedder

        with self._models_lock:
            key = (source, device)
            if key not in self._models:
                self._models[key] = load_embedder(source, device=device)
            return self._models[key]

    def indices(self) -> list[IndexRow]:
        """The cluster's indices (hidden ones left out) with their aliases and documents."""
        from xlidx.workflows.lifecycle import list_indices

        return list_indices(self.backend)

    def describe(self) -> dict[str, Any]:
        """Engine, version, plugins and health of the cluster, and what xlidx found it can do
        (``capabilities``)."""
        return {**self.backend.describe(), "capabilities": self.backend.capabilities().to_json()}
