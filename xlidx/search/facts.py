"""What a searcher knows of its index: its state (version, ``_meta``) and how many documents
BM25 can reach in a set of languages. Read once per searcher, then cached."""

from __future__ import annotations

from xlidx.backends.base import Backend
from xlidx.errors import MappingError
from xlidx.indices.manage import IndexState, resolve


class IndexFacts:
    def __init__(self, backend: Backend, index: str) -> None:
        self.backend = backend
        self.index = index
        self._state: IndexState | None = None
        self._reach: dict[frozenset[str], float] = {}
        self._total: int | None = None

    def state(self) -> IndexState:
        if self._state is None:
            st = resolve(self.backend, self.index)
            if st is None:
                raise MappingError(f"no xlidx index named {self.index!r}")
            self._state = st
        return self._state

    def reach(self, langs: frozenset[str]) -> float:
        """Share of documents with text in one of ``langs`` (what BM25 can match)."""
        if not langs:
            return 0.0
        if langs not in self._reach:
            index = self.state().index
            if self._total is None:
                self._total = self.backend.count(index)
            if not self._total:
                self._reach[langs] = 0.0
            else:
                n = self.backend.count(index, {"terms": {"xlidx.langs": sorted(langs)}})
                self._reach[langs] = n / self._total
        return self._reach[langs]
