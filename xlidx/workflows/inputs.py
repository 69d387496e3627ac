"""What an ingest reads, and from where a rerun resumes.

A source is a path (a JSONL or CSV file, which is checkpointed; a directory; ``"-"`` for
stdin), a :class:`FileSource`, another index (:class:`FromIndex`), or records in memory
(dicts or :class:`~xlidx.documents.RawItem`). :func:`open_input` turns each into items;
:func:`open_run` finds where a checkpointed file resumes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from xlidx.documents import RawItem
from xlidx.errors import ConfigError
from xlidx.pipeline.checkpoint import Checkpoint, Position, PrefixDigest, Saved, checkpoint_key

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.indices.manage import IndexState
    from xlidx.pipeline.options import IngestOptions
    from xlidx.pipeline.summary import IngestSummary
    from xlidx.workflows.index import Index


@dataclass(frozen=True)
class FileSource:
    """A JSONL or CSV file, read with byte offsets so that ingest can checkpoint it and a
    rerun can resume (see :mod:`xlidx.pipeline.checkpoint`)."""

    path: Path
    fmt: str  # "jsonl" | "csv"

    def read(self, start: Position | None = None) -> Iterator[RawItem]:
        from xlidx.pipeline.sources import read_csv, read_jsonl

        return read_jsonl(self.path, start) if self.fmt == "jsonl" else read_csv(self.path, start)


@dataclass(frozen=True)
class FromIndex:
    """The documents of another index on the same cluster (``--from-index``)."""

    name: str


Source: TypeAlias = "str | Path | FileSource | FromIndex | Iterable[RawItem | Mapping[str, Any]]"


@dataclass
class Input:
    items: Iterator[RawItem] | FileSource
    label: str  # the source as a queued job records it


def open_input(
    backend: Backend, source: Source, *, fmt: str | None = None, retry_for: float = 0.0
) -> Input:
    """The items of ``source``; a path to a JSONL or CSV file becomes a :class:`FileSource`.
    ``fmt`` (jsonl, csv or dir) overrides what a path's name says."""
    from xlidx.pipeline.sources import open_source, resumable

    if isinstance(source, FromIndex):
        from xlidx.indices.existing import read_index

        return Input(read_index(backend, source.name, retry_for=retry_for), f"index {source.name}")
    if isinstance(source, FileSource):
        return Input(source, str(source.path))
    if isinstance(source, str | Path):
        text = str(source)
        file = resumable(text, fmt)
        return Input(FileSource(*file) if file else open_source(text, fmt), text)
    return Input(_raw_items(source), "records")


def _raw_items(records: Iterable[RawItem | Mapping[str, Any]]) -> Iterator[RawItem]:
    for n, r in enumerate(records, 1):
        yield r if isinstance(r, RawItem) else RawItem(f"records:{n}", payload=dict(r))


@dataclass
class Opened:
    """An ingest about to start: its options settled, the index as it is, its input."""

    options: IngestOptions
    existing: IndexState | None
    input: Input


def open_ingest(
    index: Index, source: Source, options: IngestOptions | None, *, fmt: str | None, queued: bool
) -> Opened:
    """What in-process and queued ingest do first: look the index up (failing fast when the
    cluster is down), settle the options against it, open the source."""
    from xlidx.indices.manage import resolve
    from xlidx.pipeline.options import IngestOptions

    backend = index.backend
    existing = resolve(backend, index.name)
    opts = settled(backend, replace(options or IngestOptions(), index=index.name), existing)
    given = open_input(backend, source, fmt=fmt, retry_for=opts.retry_for or 0.0)
    check_from_start(opts, given.items, queued=queued)
    return Opened(opts, existing, given)


def check_from_start(options: IngestOptions, items: object, *, queued: bool) -> None:
    if options.from_start and (queued or not isinstance(items, FileSource)):
        raise ConfigError(
            "--from-start applies to in-process ingest of a JSONL or CSV file (the other "
            "sources and --queue have no checkpoint)"
        )


def settled(backend: Backend, options: IngestOptions, existing: IndexState | None) -> IngestOptions:
    """``options`` checked (the index's name, the language codes), with the defaults that
    depend on the cluster filled in: an existing index keeps the languages it was built
    with (``index migrate --redetect`` changes them), and ``retry_for`` is the
    connection's."""
    from xlidx.pipeline.detect import parse_languages
    from xlidx.spec import validate_index_name

    if not options.index:
        raise ConfigError("no index to write to: name one (IngestOptions.index, or an Index)")
    validate_index_name(options.index)
    translate_to = parse_languages(options.translate_to)
    if options.translate_to and not translate_to:
        raise ConfigError("translate_to takes language codes, not 'all'")
    languages = options.languages
    if languages is None:
        languages = tuple(existing.xlidx_meta.get("languages") or ()) if existing else ()
    retry_for = options.retry_for
    if retry_for is None:
        retry_for = backend.settings.retry_for
    return replace(
        options,
        languages=parse_languages(languages),
        translate_to=translate_to,
        retry_for=retry_for,
    )


@dataclass
class Run:
    """Where an in-process ingest reads from, and the checkpoint that remembers its ids."""

    items: Iterator[RawItem]
    ids: Checkpoint
    digest: PrefixDigest | None = None  # set when the source is checkpointed
    resumed: Saved | None = None
    index_created: str = ""  # the index's ``_meta.xlidx.created_at``, recorded with each save


def open_run(
    items: Iterable[RawItem] | FileSource,
    options: IngestOptions,
    backend: Backend,
    state: IndexState,
    fingerprint: str,
    summary: IngestSummary,
    *,
    created: bool,
) -> Run:
    """The items to read, from a checkpoint's position when it still holds (never into an
    index this run created: whatever a checkpoint says was written there is gone)."""
    if not isinstance(items, FileSource) or options.checkpoints is None:
        source = items.read() if isinstance(items, FileSource) else iter(items)
        return Run(source, Checkpoint.temporary_file())
    summary.checkpointed = True
    key = checkpoint_key(
        source=items.path,
        fmt=items.fmt,
        cluster=backend.settings.display_urls,
        index=options.index,
        fingerprint=fingerprint,
        max_doc_bytes=options.max_doc_bytes,
    )
    ckpt = Checkpoint(options.checkpoints / f"{key}.sqlite")
    saved = ckpt.load()
    created_at = str(state.xlidx_meta.get("created_at", ""))
    digest = PrefixDigest(items.path)
    if saved is not None and not options.from_start and not created:
        if saved.index != state.index or saved.index_created != created_at:
            summary.checkpoint_note = (
                f"the checkpoint was made for another version of {options.index} "
                f"({saved.index}); read the whole input"
            )
        elif not digest.matches(saved.offset, saved.digest):
            summary.checkpoint_note = (
                f"{items.path.name} changed before line {saved.line}, where the last run "
                "stopped; read the whole input (unchanged records are skipped)"
            )
        else:
            ckpt.resume_at(saved)
            summary.resumed_after, summary.resumed_line = saved.records, saved.line
            return Run(items.read(saved.position), ckpt, digest, saved, created_at)
    ckpt.reset()
    # a digest that failed to match has read on: start the new one from the file's beginning
    return Run(items.read(), ckpt, PrefixDigest(items.path), index_created=created_at)
