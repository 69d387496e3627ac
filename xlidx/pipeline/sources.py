"""Read documents: JSONL, CSV, a directory of .txt/.md files or stdin.

An existing index is read by :func:`xlidx.indices.existing.read_index`.

Every reader yields :class:`~xlidx.documents.RawItem` s and never raises for a bad record:
a line that is not JSON, not UTF-8, or not an object becomes an item carrying its error, so
that it can be dead-lettered while the rest of the input is read.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from xlidx.documents import RawItem
from xlidx.errors import ConfigError
from xlidx.pipeline.checkpoint import Position

FORMATS = ("jsonl", "csv", "dir")
_TEXT_SUFFIXES = (".txt", ".md")


def _decode(line: bytes, origin: str) -> tuple[str | None, RawItem | None]:
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = line[exc.start : exc.start + 1].hex()
        raw = line.decode("utf-8", errors="backslashreplace")
        return None, RawItem(
            origin, error=f"not valid UTF-8 (byte 0x{bad} at offset {exc.start})", raw=raw
        )


def read_jsonl_stream(
    stream: IO[bytes], name: str, *, offset: int = 0, line: int = 0
) -> Iterator[RawItem]:
    """One JSON object per line; blank lines are skipped. ``offset`` and ``line`` say where in
    its file the stream starts (a resumed read), so that origins and offsets stay the file's."""
    for n, data in enumerate(stream, start=line + 1):
        offset += len(data)
        # a last line without its newline may still be being written: never checkpoint past it
        end = offset if data.endswith(b"\n") else None
        origin = f"{name}:{n}"
        text, bad = _decode(data.rstrip(b"\r\n"), origin)
        if bad is not None:
            yield replace(bad, end=end, line=n)
            continue
        assert text is not None
        if not text.strip():
            continue
        try:
            yield RawItem(origin, payload=json.loads(text), end=end, line=n)
        except json.JSONDecodeError as exc:
            yield RawItem(
                origin,
                error=f"malformed JSON: {exc.msg} (column {exc.colno})",
                raw=text,
                end=end,
                line=n,
            )


def read_jsonl(path: Path, start: Position | None = None) -> Iterator[RawItem]:
    with path.open("rb") as fh:
        if start is not None:
            fh.seek(start.offset)
        at = start or Position(0, 0)
        yield from read_jsonl_stream(fh, path.name, offset=at.offset, line=at.line)


class _Lines:
    """The lines of a binary stream as text (invalid UTF-8 kept as surrogates), counting the
    bytes and lines handed out: the csv reader pulls exactly the lines of each row, so after a
    row they say where it ends."""

    def __init__(self, stream: IO[bytes], offset: int = 0, line: int = 0) -> None:
        self.stream, self.offset, self.line = stream, offset, line
        self.complete = True  # the last line handed out ends with its newline

    def __iter__(self) -> Iterator[str]:
        for data in self.stream:
            self.offset += len(data)
            self.line += 1
            self.complete = data.endswith(b"\n")
            yield data.decode("utf-8", errors="surrogateescape")


def read_csv_stream(
    stream: IO[bytes],
    name: str,
    *,
    header: IO[bytes] | None = None,
    offset: int = 0,
    line: int = 0,
) -> Iterator[RawItem]:
    """A CSV stream with a header row; every column becomes a string field. Invalid UTF-8 is
    caught per row. ``header`` is where to read the header row from when ``stream`` starts
    further on (a resumed read at ``offset`` bytes, ``line`` lines)."""
    lines = _Lines(stream, offset, line)
    fieldnames: list[str] | None = None
    if header is not None:
        fieldnames = next(csv.reader(_Lines(header)), None)
    reader = csv.DictReader(iter(lines), fieldnames=fieldnames)
    try:
        if reader.fieldnames is None:
            return
        for row in reader:
            origin = f"{name}:{lines.line}"
            end, n = (lines.offset if lines.complete else None), lines.line
            if None in row:
                yield RawItem(
                    origin,
                    error="row has more columns than the header",
                    raw=json.dumps({k or "": _show(v) for k, v in row.items()}, default=str),
                    end=end,
                    line=n,
                )
                continue
            values = {k: v for k, v in row.items() if k}
            if any(_has_surrogates(v) for v in values.values() if isinstance(v, str)):
                raw = json.dumps({k: _show(v) for k, v in values.items()}, ensure_ascii=False)
                yield RawItem(origin, error="not valid UTF-8", raw=raw, end=end, line=n)
                continue
            yield RawItem(origin, payload=values, end=end, line=n)
    except csv.Error as exc:
        yield RawItem(f"{name}:{lines.line}", error=f"malformed CSV: {exc}")


def read_csv(path: Path, start: Position | None = None) -> Iterator[RawItem]:
    with path.open("rb") as fh:
        if start is None or start.offset == 0:
            yield from read_csv_stream(fh, path.name)
            return
        with path.open("rb") as head:
            fh.seek(start.offset)
            yield from read_csv_stream(
                fh, path.name, header=head, offset=start.offset, line=start.line
            )


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _show(value: Any) -> Any:
    if isinstance(value, list):
        return [_show(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def read_dir(path: Path) -> Iterator[RawItem]:
    """Every .txt/.md file below ``path``: id = relative path, title = file stem, body = text."""
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _TEXT_SUFFIXES):
        rel = file.relative_to(path).as_posix()
        data = file.read_bytes()
        text, bad = _decode(data, rel)
        if bad is not None:
            yield RawItem(rel, error=bad.error, raw=bad.raw[:2000] if bad.raw else None)
            continue
        assert text is not None
        yield RawItem(rel, payload={"id": rel, "title": file.stem, "body": text, "path": rel})


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ConfigError(
        f"cannot tell the format of {path.name!r} from its name: use --format jsonl|csv|dir"
    )


def open_source(source: str, fmt: str | None = None) -> Iterator[RawItem]:
    """Items from a path (file or directory), or from stdin when ``source`` is ``-``."""
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if source == "-":
        if fmt not in (None, "jsonl", "csv"):
            raise ConfigError("stdin can be read as jsonl or csv only")
        if fmt == "csv":
            return _read_csv_stdin()
        return read_jsonl_stream(sys.stdin.buffer, "stdin")
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(f"input not found: {source}")
    fmt = fmt or detect_format(path)
    readers: dict[str, Callable[[Path], Iterator[RawItem]]] = {
        "jsonl": read_jsonl,
        "csv": read_csv,
        "dir": read_dir,
    }
    if fmt == "dir" and not path.is_dir():
        raise ConfigError(f"--format dir needs a directory, got a file: {source}")
    if fmt != "dir" and path.is_dir():
        raise ConfigError(f"{source} is a directory: use --format dir (or leave --format out)")
    return readers[fmt](path)


def _read_csv_stdin() -> Iterator[RawItem]:
    yield from read_csv_stream(sys.stdin.buffer, "stdin")


def resumable(source: str, fmt: str | None = None) -> tuple[Path, str] | None:
    """``(path, format)`` when ``source`` is a JSONL or CSV file (which ingest can checkpoint
    and resume), else None."""
    if source == "-":
        return None
    path = Path(source).expanduser()
    if not path.is_file():
        return None
    kind = fmt or detect_format(path)
    return (path, kind) if kind in ("jsonl", "csv") else None
