"""A persistent sentence-translation cache in one SQLite file.

Key: (sha256 of the source sentence, source language, target language, model tag), where the
model tag names the package and its version (and the decoding settings that change output).
A hit never reaches the model. The file defaults to
``$XLIDX_HOME/cache/translations.sqlite3`` (``XLIDX_HOME`` defaults to ``~/.cache/xlidx``).

Several threads and processes may share one file: the database runs in WAL mode, every
read or write is one short transaction, writers wait (``busy_timeout``) instead of failing,
and each thread (and each forked process) opens its own connection.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from xlidx.config import xlidx_home
from xlidx.errors import ModelError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    text_sha256 TEXT NOT NULL,
    src TEXT NOT NULL,
    tgt TEXT NOT NULL,
    model TEXT NOT NULL,
    translation TEXT NOT NULL,
    PRIMARY KEY (text_sha256, src, tgt, model)
) WITHOUT ROWID
"""
_CHUNK = 500  # SQLite's bound-variable limit is 999 on old builds
_BUSY_TIMEOUT_MS = 30_000


def default_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XLIDX_HOME/cache/translations.sqlite3``; ``XLIDX_HOME`` defaults to ~/.cache/xlidx."""
    return xlidx_home(env) / "cache" / "translations.sqlite3"


def text_key(text: str) -> str:
    """The hex sha256 of a text, as stored in the cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TranslationCache:
    """Sentence translations keyed by (text hash, src, tgt, model); counts hits and misses.

    The constructor does no I/O: the file and its table are created on first use.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.hits = 0
        self.misses = 0
        self._local = threading.local()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TranslationCache({str(self.path)!r}, hits={self.hits}, misses={self.misses})"

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ModelError(f"translation cache {self.path} is unusable: {exc}") from None
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def lookup(self, texts: Iterable[str], src: str, tgt: str, model: str) -> dict[str, str]:
        """Cached translations of the (distinct) ``texts``; counts each as a hit or a miss."""
        wanted = {text_key(t): t for t in texts}
        found: dict[str, str] = {}
        hashes = list(wanted)
        try:
            conn = self._connect()
            for i in range(0, len(hashes), _CHUNK):
                chunk = hashes[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT text_sha256, translation FROM translations "  # noqa: S608 (only ? marks)
                    f"WHERE src = ? AND tgt = ? AND model = ? AND text_sha256 IN ({marks})",
                    (src, tgt, model, *chunk),
                ).fetchall()
                found.update((wanted[h], tr) for h, tr in rows)
        except sqlite3.Error as exc:
            raise ModelError(f"reading the translation cache {self.path} failed: {exc}") from None
        with self._lock:
            self.hits += len(found)
            self.misses += len(wanted) - len(found)
        return found

    def store(self, translations: Mapping[str, str], src: str, tgt: str, model: str) -> None:
        """Remember ``{source text: translation}`` for (src, tgt, model), in one transaction."""
        if not translations:
            return
        rows = [(text_key(s), src, tgt, model, t) for s, t in translations.items()]
        try:
            conn = self._connect()
            with conn:  # BEGIN … COMMIT
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise ModelError(f"writing the translation cache {self.path} failed: {exc}") from None

    def get(self, text: str, src: str, tgt: str, model: str) -> str | None:
        """One cached translation, or None."""
        return self.lookup([text], src, tgt, model).get(text)

    def __len__(self) -> int:
        row = self._connect().execute("SELECT COUNT(*) FROM translations").fetchone()
        return int(row[0])

    def stats(self) -> dict[str, int]:
        """Hit and miss counters of this object (not of the file)."""
        return {"hits": self.hits, "misses": self.misses}

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None
