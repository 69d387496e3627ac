"""How far a file source was read and written, so that a rerun goes straight to new work.

A checkpoint is a small SQLite file per (source file, cluster, index, pipeline fingerprint)
under ``$XLIDX_HOME/checkpoints/``. It holds

* the position up to which every record was written (or dead-lettered): a byte offset and a
  line number, with a BLAKE2 digest of the file's bytes before it. A rerun hashes that prefix
  again (about a second per gigabyte) and starts reading at the offset only when the digest
  matches: an edited record before the offset sends the run back to the start, so a checkpoint
  never hides a change; records after it are checked against the index as always;
* the ids read so far with where each was first seen, so that a repeated id is caught across
  the whole input in bounded memory, also across an interruption.

Sources without a file to seek in (stdin, ``--from-index``) keep their ids in a temporary
checkpoint that is deleted at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from xlidx.documents import canonical_hash
from xlidx.errors import ConfigError

_CHUNK = 1 << 20
_PARAMS = 500  # ids per SQL statement (SQLite allows 999 parameters in old builds)


@dataclass(frozen=True)
class Position:
    """Where a file source stands: bytes and lines before the next record."""

    offset: int
    line: int


@dataclass(frozen=True)
class Saved:
    """What a checkpoint records (JSON in the file)."""

    offset: int
    line: int
    records: int  # items read before ``offset``
    digest: str  # BLAKE2b of the file's first ``offset`` bytes
    index: str  # the concrete index written to
    index_created: str  # its ``_meta.xlidx.created_at``: a re-created index has another
    updated: str

    @property
    def position(self) -> Position:
        return Position(self.offset, self.line)


def checkpoint_key(
    *,
    source: Path,
    fmt: str,
    cluster: str,
    index: str,
    fingerprint: str,
    max_doc_bytes: int = 0,
) -> str:
    """The name of the checkpoint of one source, cluster, index and pipeline (pure). The size
    limit is part of it: a rerun with a larger ``--max-doc-bytes`` reads the records it
    refused again."""
    return canonical_hash(
        {
            "source": str(source.expanduser().resolve()),
            "format": fmt,
            "cluster": cluster,
            "index": index,
            "fingerprint": fingerprint,
            "max_doc_bytes": max_doc_bytes,
        }
    )[:32]


class PrefixDigest:
    """BLAKE2b of a file's first bytes, extended as the checkpoint moves forward (each byte is
    hashed once per run)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._hash = hashlib.blake2b(digest_size=20)
        self._at = 0

    def advance(self, offset: int) -> str:
        if offset > self._at:
            with self.path.open("rb") as fh:
                fh.seek(self._at)
                left = offset - self._at
                while left > 0:
                    data = fh.read(min(_CHUNK, left))
                    if not data:
                        break
                    self._hash.update(data)
                    left -= len(data)
            self._at = offset - left
        return self._hash.hexdigest()

    def matches(self, offset: int, digest: str) -> bool:
        """Whether the file's first ``offset`` bytes still hash to ``digest`` (the file read
        once); the digest then goes on from there."""
        return self.advance(offset) == digest and self._at == offset


class Checkpoint:
    """One checkpoint file: the saved position and the ids seen. Thread-safe (the reader
    thread records ids; the writing thread saves positions)."""

    def __init__(self, path: Path, *, temporary: bool = False) -> None:
        self.path = path
        self.temporary = temporary
        self._lock = threading.Lock()
        self._held: IO[str] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not temporary:  # one run at a time per source, cluster, index and pipeline
                self._held = path.with_suffix(".lock").open("w")
                try:
                    fcntl.flock(self._held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._release()
                    raise ConfigError(
                        "another xlidx ingest of this file into this index is running "
                        f"(checkpoint {path}); wait for it or stop it"
                    ) from None
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, origin TEXT, at INTEGER)"
            )
        except (OSError, sqlite3.Error) as exc:
            self._release()
            raise _failed(path, exc) from None

    @classmethod
    def temporary_file(cls, directory: Path | None = None) -> Checkpoint:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="xlidx-ids-", dir=directory))
        return cls(folder / "ids.sqlite", temporary=True)

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()  # closing the file lets the lock go
            self._held = None

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise _failed(self.path, exc) from None

    # -- the position ------------------------------------------------------------------------
    def load(self) -> Saved | None:
        with self._lock:
            row = self._run("SELECT v FROM state WHERE k = 'saved'").fetchone()
        if row is None:
            return None
        try:
            return Saved(**json.loads(row[0]))
        except (TypeError, ValueError):
            return None  # written by another version: start over

    def save(self, saved: Mapping[str, Any] | Saved) -> None:
        data = asdict(saved) if isinstance(saved, Saved) else dict(saved)
        data.setdefault("updated", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._lock:
            self._run(
                "INSERT OR REPLACE INTO state (k, v) VALUES ('saved', ?)", (json.dumps(data),)
            )

    def resume_at(self, saved: Saved) -> None:
        """Forget the ids read after ``saved`` (read, but never written, before the stop)."""
        with self._lock:
            self._run("DELETE FROM seen WHERE at > ?", (saved.offset,))

    def reset(self) -> None:
        with self._lock:
            self._run("DELETE FROM state")
            self._run("DELETE FROM seen")

    # -- ids ---------------------------------------------------------------------------------
    def claim(self, entries: Sequence[tuple[str, str, int]]) -> dict[int, str]:
        """Record ``(id, origin, offset)`` entries in order. Returns, for each entry whose id
        was seen before (earlier in the input or earlier in ``entries``), its position in
        ``entries`` and where the id was first seen."""
        repeats: dict[int, str] = {}
        with self._lock:
            known: dict[str, str] = {}
            ids = [e[0] for e in entries]
            for i in range(0, len(ids), _PARAMS):
                part = ids[i : i + _PARAMS]
                marks = ",".join("?" * len(part))
                known.update(
                    self._run(
                        f"SELECT id, origin FROM seen WHERE id IN ({marks})",  # noqa: S608
                        part,
                    ).fetchall()
                )
            fresh: list[tuple[str, str, int]] = []
            for n, (doc_id, origin, at) in enumerate(entries):
                if doc_id in known:
                    repeats[n] = known[doc_id]
                    continue
                known[doc_id] = origin
                fresh.append((doc_id, origin, at))
            try:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT INTO seen (id, origin, at) VALUES (?, ?, ?)", fresh)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise _failed(self.path, exc) from None
        return repeats

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._release()
        if self.temporary:
            shutil.rmtree(self.path.parent, ignore_errors=True)


def _failed(path: Path, exc: BaseException) -> ConfigError:
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(
        f"cannot use the checkpoint {path}: {detail} (set XLIDX_HOME to a writable folder, or "
        "delete the file to start over)"
    )
