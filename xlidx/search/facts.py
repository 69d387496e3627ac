"""What a searcher knows of its index: its state (version, ``_meta``) and how many documents
BM25 can reach in a set of languages. Read once per searcher, then cached."""

from __future__ import annotations

import time

from xlidx.backends.base import Backend
from xlidx.documents import UNDETERMINED
from xlidx.errors import IndexNotFound
from xlidx.indices.manage import IndexState, resolve


class IndexFacts:
    def __init__(
        self,
        backend: Backend,
        index: str,
        state: IndexState | None = None,
        *,
        max_age: float | None = None,
    ) -> None:
        """``max_age``: seconds what was read is trusted before it is read again (a long-lived
        process such as ``xlidx serve`` sees another process's calibration or new version
        within it); ``None``: until :meth:`forget`."""
        self.backend = backend
        self.index = index
        self._state: IndexState | None = state  # given: a concrete version, not the alias's
        self._pinned = state is not None
        self.max_age = max_age
        self._read_at = time.monotonic()
        self._reach: dict[frozenset[str], float] = {}
        self._total: int | None = None
        self._languages: dict[str, int] | None = None

    def state(self) -> IndexState:
        if self.max_age is not None and time.monotonic() - self._read_at > self.max_age:
            self.forget()
        st = self._state  # read once: another thread may forget it meanwhile
        if st is None:
            st = resolve(self.backend, self.index)
            if st is None:
                raise IndexNotFound(f"no xlidx index named {self.index!r}")
            self._state = st
        return st

    def forget(self) -> None:
        """Read the index again on next use: after documents were written, a calibration, or
        a new version behind the alias (a pinned version stays pinned)."""
        if not self._pinned:
            self._state = None
        self._read_at = time.monotonic()
        self._reach.clear()
        self._total = None
        self._languages = None

    def languages(self) -> dict[str, int]:
        """Documents per language that BM25 can match (``xlidx.langs``: originals, passages
        and translations), ``und`` left out: the prior of query-language detection and the
        languages a query is translated into."""
        if self._languages is None:
            counts = self.backend.language_counts(self.state().index, any_text=True)
            self._languages = {lang: n for lang, n in counts.items() if lang != UNDETERMINED}
        return self._languages

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
                n = self.backend.count_text_languages(index, langs)
                self._reach[langs] = n / self._total
        return self._reach[langs]
