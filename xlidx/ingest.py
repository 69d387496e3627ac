"""In-process ingest: read → validate → skip unchanged → detect → translate → embed → write.

The library API behind ``xlidx ingest``. Stages overlap in threads (see
:mod:`xlidx.pipeline.overlap`); each one is a plain function over a batch, so the Celery
workers can call the same functions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from opensearchpy import OpenSearch

from xlidx.backends.opensearch import call
from xlidx.config import ConnectionSettings
from xlidx.documents import (
    DEFAULT_MAX_DOC_BYTES,
    DEFAULT_TEXT_FIELDS,
    UNDETERMINED,
    DeadLetter,
    Prepared,
    RawItem,
    Record,
    canonical_hash,
    to_record,
)
from xlidx.errors import ModelError, XlidxError
from xlidx.mapping.manage import IndexState, ensure, update_meta
from xlidx.mapping.spec import IndexSpec, VectorSpec, check_model, merge_packages
from xlidx.pipeline.detect import DEFAULT_LANGUAGES, DEFAULT_MIN_CONFIDENCE, Detector, detect_stage
from xlidx.pipeline.overlap import run_overlapped
from xlidx.pipeline.write import BulkWriter


class EmbedderLike(Protocol):
    @property
    def name(self) -> str: ...

    def describe(self) -> dict[str, Any]: ...

    def split_passages(self, text: str) -> list[str]: ...

    def encode_document(self, texts: Sequence[str]) -> Any: ...


class TranslatorLike(Protocol):
    def route(self, src: str, tgt: str) -> Any: ...

    def translate_many(self, requests: Sequence[tuple[str, str, str]]) -> list[str]: ...

    def describe(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class IngestOptions:
    index: str
    text_fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    translate_to: tuple[str, ...] = ()
    batch_size: int = 64
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    vector: VectorSpec = field(default_factory=VectorSpec)
    refresh: bool = True


@dataclass
class IngestSummary:
    read: int = 0
    indexed: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    index: str = ""
    languages: Counter[str] = field(default_factory=Counter)
    untranslated: Counter[str] = field(default_factory=Counter)  # "ja->en" -> documents
    dead_letter_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "dead_lettered": self.dead_lettered,
            "seconds": round(self.seconds, 3),
            "index": self.index,
            "languages": dict(self.languages),
            "untranslated": dict(self.untranslated),
            "dead_letter_file": self.dead_letter_file,
        }


class DeadLetterSink:
    """Appends dead letters to a JSONL file, created on the first one, flushed every line."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[str] | None = None
        self.kept: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        self.count += 1
        if self.path is None:
            self.kept.append(letter)
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(letter.to_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass
class _Batch:
    prepared: list[Prepared]
    unchanged: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    read: int = 0


Progress = Callable[[str, int], None]


def pipeline_fingerprint(
    embedding: Mapping[str, Any], *, translate_to: Iterable[str], text_fields: Iterable[str]
) -> str:
    """What, besides a record's content, decides its indexed form."""
    return canonical_hash(
        {
            "embedding": dict(embedding),
            "translate_to": sorted(translate_to),
            "text_fields": list(text_fields),
        }
    )


def _batches(
    items: Iterable[RawItem], options: IngestOptions, fingerprint: str
) -> Iterator[_Batch]:
    seen: dict[str, str] = {}
    batch = _Batch(prepared=[])
    for item in items:
        batch.read += 1
        rec = to_record(
            item,
            text_fields=options.text_fields,
            max_doc_bytes=options.max_doc_bytes,
            pipeline_fingerprint=fingerprint,
        )
        if isinstance(rec, DeadLetter):
            batch.dead.append(rec)
        elif rec.id in seen:
            batch.dead.append(
                DeadLetter(
                    rec.origin,
                    "validate",
                    f"duplicate id {rec.id!r} (first seen at {seen[rec.id]}); "
                    "the first one is kept",
                    {"id": rec.id, **rec.extra, **rec.texts},
                    rec.id,
                )
            )
        else:
            seen[rec.id] = rec.origin
            batch.prepared.append(Prepared(rec))
        if len(batch.prepared) >= options.batch_size:
            yield batch
            batch = _Batch(prepared=[])
    if batch.prepared or batch.dead or batch.read:
        yield batch


def _skip_unchanged(
    client: OpenSearch, settings: ConnectionSettings, index: str, batch: _Batch
) -> _Batch:
    if not batch.prepared:
        return batch
    ids = [p.record.id for p in batch.prepared]
    res = call(
        settings,
        "look up existing documents",
        lambda: client.mget(
            index=index, body={"ids": ids}, params={"_source_includes": "xlidx.content_hash"}
        ),
    )
    known = {
        d["_id"]: d.get("_source", {}).get("xlidx", {}).get("content_hash")
        for d in res.get("docs", [])
        if d.get("found")
    }
    keep = [p for p in batch.prepared if known.get(p.record.id) != p.record.content_hash]
    batch.unchanged += len(batch.prepared) - len(keep)
    batch.prepared = keep
    return batch


def _fail_batch(batch: _Batch, stage: str, exc: XlidxError) -> None:
    for p in batch.prepared:
        batch.dead.append(
            DeadLetter(p.record.origin, stage, str(exc), _record_dict(p.record), p.record.id)
        )
    batch.prepared = []


def _record_dict(rec: Record) -> dict[str, Any]:
    return {"id": rec.id, **rec.extra, **rec.texts, **({"lang": rec.lang} if rec.lang else {})}


class _Translate:
    def __init__(self, translator: TranslatorLike | None, targets: Sequence[str]) -> None:
        self.translator = translator
        self.targets = tuple(targets)
        self.routes: dict[tuple[str, str], bool] = {}
        self.untranslated: Counter[str] = Counter()

    def _can(self, src: str, tgt: str) -> bool:
        if (src, tgt) not in self.routes:
            try:
                assert self.translator is not None
                self.translator.route(src, tgt)
                self.routes[(src, tgt)] = True
            except ModelError:
                self.routes[(src, tgt)] = False
        return self.routes[(src, tgt)]

    def __call__(self, batch: _Batch) -> _Batch:
        if not self.targets or self.translator is None or not batch.prepared:
            return batch
        requests: list[tuple[str, str, str]] = []
        slots: list[tuple[Prepared, str, str]] = []
        for p in batch.prepared:
            missing: set[str] = set()
            for f, text in p.record.texts.items():
                src = p.field_langs.get(f, UNDETERMINED)
                if src == UNDETERMINED:
                    continue
                for tgt in self.targets:
                    if tgt == src:
                        continue
                    if self._can(src, tgt):
                        requests.append((text, src, tgt))
                        slots.append((p, f, tgt))
                    else:
                        missing.add(f"{src}->{tgt}")
            for pair in missing:
                self.untranslated[pair] += 1
        if not requests:
            return batch
        try:
            out = self.translator.translate_many(requests)
        except XlidxError as exc:
            _fail_batch(batch, "translate", exc)
            return batch
        for (p, f, tgt), text in zip(slots, out, strict=True):
            p.translations.setdefault(f, {})[tgt] = text
        return batch


def _embed(embedder: EmbedderLike) -> Callable[[_Batch], _Batch]:
    def stage(batch: _Batch) -> _Batch:
        if not batch.prepared:
            return batch
        try:
            owners: list[Prepared] = []
            passages: list[str] = []
            for p in batch.prepared:
                text = "\n\n".join(p.record.texts.values())
                parts = embedder.split_passages(text) or [text]
                p.passages = parts
                passages.extend(parts)
                owners.extend([p] * len(parts))
            vectors = embedder.encode_document(passages)
        except XlidxError as exc:
            _fail_batch(batch, "embed", exc)
            return batch
        for p, v in zip(owners, vectors, strict=True):
            p.vectors.append([float(x) for x in v])
        return batch

    return stage


def model_source(embedder: EmbedderLike) -> str:
    """How to load ``embedder`` again: its directory (absolute) or hub name, else its name."""
    source = getattr(embedder, "source", None)
    if isinstance(source, str | Path) and Path(str(source)).expanduser().exists():
        return str(Path(str(source)).expanduser().resolve())
    return str(source or embedder.name)


def ingest(
    items: Iterable[RawItem],
    *,
    client: OpenSearch,
    settings: ConnectionSettings,
    options: IngestOptions,
    embedder: EmbedderLike,
    translator: TranslatorLike | None = None,
    dead_letters: DeadLetterSink | None = None,
    progress: Progress = lambda _stage, _n: None,
) -> IngestSummary:
    """Index ``items`` into the xlidx index ``options.index`` (created when missing)."""
    t0 = time.monotonic()
    sink = dead_letters or DeadLetterSink(None)
    embedding = embedder.describe()
    spec = IndexSpec(
        name=options.index,
        embedding={**embedding, "source": model_source(embedder)},
        text_fields=options.text_fields,
        languages=options.languages,
        translate_to=options.translate_to,
        vector=options.vector,
    )
    if options.translate_to and translator is None:
        raise ModelError("--translate-to needs a translator, but none was given")
    state, created = ensure(client, settings, spec)
    if not created:
        check_model(state.meta, embedding, options.index)
    detector = Detector(options.languages, min_confidence=options.min_confidence)
    translate = _Translate(translator, options.translate_to)
    writer = BulkWriter(client, settings)
    summary = IngestSummary(index=state.index)
    fingerprint = pipeline_fingerprint(
        embedding, translate_to=options.translate_to, text_fields=options.text_fields
    )

    def check(batch: _Batch) -> _Batch:
        progress("checking", 0)
        return _skip_unchanged(client, settings, state.index, batch)

    def detect_and_translate(batch: _Batch) -> _Batch:
        detect_stage(batch.prepared, detector)
        progress("translating" if options.translate_to else "detecting", 0)
        return translate(batch)

    def embed(batch: _Batch) -> _Batch:
        progress("embedding", 0)
        return _embed(embedder)(batch)

    try:
        for batch in run_overlapped(
            _batches(items, options, fingerprint), [check, detect_and_translate, embed]
        ):
            summary.read += batch.read
            summary.unchanged += batch.unchanged
            if batch.prepared:
                progress("writing", 0)
                res = writer.write(state.index, batch.prepared, model=embedder.name)
                summary.indexed += res.indexed
                batch.dead.extend(res.dead)
                written = {d.id for d in res.dead}
                summary.languages.update(
                    p.lang for p in batch.prepared if p.record.id not in written
                )
            for letter in batch.dead:
                sink.add(letter)
            summary.dead_lettered += len(batch.dead)
            progress("done", batch.read)
    finally:
        sink.close()
        summary.untranslated = translate.untranslated
        summary.seconds = time.monotonic() - t0
        summary.dead_letter_file = str(sink.path) if sink.path and sink.count else None
    if options.refresh and (summary.indexed or created):
        call(settings, f"refresh {state.index}", lambda: client.indices.refresh(index=state.index))
    _record_translation(client, settings, state, translator, options)
    return summary


def _record_translation(
    client: OpenSearch,
    settings: ConnectionSettings,
    state: IndexState,
    translator: TranslatorLike | None,
    options: IngestOptions,
) -> None:
    """Keep ``_meta`` true to what produced the index's translations."""
    x = dict(state.xlidx_meta)
    used = translator.describe() if translator is not None else []
    packages = merge_packages(x.get("translation_packages", []), used)
    targets = sorted(set(x.get("translate_to", [])) | set(options.translate_to))
    if packages != x.get("translation_packages", []) or targets != x.get("translate_to", []):
        x["translation_packages"] = packages
        x["translate_to"] = targets
        update_meta(client, settings, state, x)
