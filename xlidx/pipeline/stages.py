"""The batch stages of ingest, which :class:`xlidx.workflows.pipeline.Pipeline` orders for
in-process ingest and the Celery workers alike.

Each stage takes a :class:`Batch` and returns it: records that a stage cannot process leave
``prepared`` for ``dead`` with the stage and the reason, so one bad record never stops a
batch and none is ever dropped without a trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from xlidx.documents import UNDETERMINED, DeadLetter, Prepared, RawItem, to_record
from xlidx.errors import ModelError, XlidxError
from xlidx.pipeline.checkpoint import Position
from xlidx.pipeline.detect import Detector, detect_passages
from xlidx.pipeline.segments import field_units


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


@dataclass
class Batch:
    prepared: list[Prepared]
    unchanged: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    read: int = 0
    end: Position | None = None  # where a file source stands after this batch's last item
    abandoned: bool = False  # a stop came before it was processed: neither written nor counted


class IdRegistry(Protocol):
    def claim(self, entries: Sequence[tuple[str, str, int]]) -> dict[int, str]:
        """Record ``(id, origin, offset)`` entries; ``{entry index: first origin}`` of repeats."""
        ...


class MemoryIds:
    """An :class:`IdRegistry` in a dict (memory grows with the input; a
    :class:`~xlidx.pipeline.checkpoint.Checkpoint` keeps ids on disk instead)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def claim(self, entries: Sequence[tuple[str, str, int]]) -> dict[int, str]:
        repeats: dict[int, str] = {}
        for n, (doc_id, origin, _at) in enumerate(entries):
            if doc_id in self.seen:
                repeats[n] = self.seen[doc_id]
            else:
                self.seen[doc_id] = origin
        return repeats


def batches(
    items: Iterable[RawItem],
    *,
    text_fields: Sequence[str],
    max_doc_bytes: int,
    batch_size: int,
    fingerprint: str,
    ids: IdRegistry | None = None,
) -> Iterator[Batch]:
    """Validate ``items`` into batches of up to ``batch_size`` records; a repeated id is a
    dead letter (the first one is kept). ``ids`` remembers the ids of the whole input."""
    registry = ids if ids is not None else MemoryIds()
    batch = Batch(prepared=[])

    def done(batch: Batch) -> Batch:
        entries = [(p.record.id, p.record.origin, batch_end(batch)) for p in batch.prepared]
        repeats = registry.claim(entries)
        if repeats:
            for n in sorted(repeats):
                rec = batch.prepared[n].record
                batch.dead.append(
                    DeadLetter(
                        rec.origin,
                        "validate",
                        f"duplicate id {rec.id!r} (first seen at {repeats[n]}); "
                        "the first one is kept",
                        {"id": rec.id, **rec.extra, **rec.texts},
                        rec.id,
                    )
                )
            batch.prepared = [p for n, p in enumerate(batch.prepared) if n not in repeats]
        return batch

    for item in items:
        batch.read += 1
        if item.end is not None:
            batch.end = Position(item.end, item.line)
        rec = to_record(
            item,
            text_fields=text_fields,
            max_doc_bytes=max_doc_bytes,
            pipeline_fingerprint=fingerprint,
        )
        if isinstance(rec, DeadLetter):
            batch.dead.append(rec)
        else:
            batch.prepared.append(Prepared(rec))
        if len(batch.prepared) >= batch_size:
            yield done(batch)
            batch = Batch(prepared=[])
    if batch.prepared or batch.dead or batch.read:
        yield done(batch)


def batch_end(batch: Batch) -> int:
    return batch.end.offset if batch.end is not None else 0


def fail_batch(batch: Batch, stage: str, exc: XlidxError) -> None:
    for p in batch.prepared:
        batch.dead.append(DeadLetter.for_record(p.record, stage, str(exc)))
    batch.prepared = []


class Translate:
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

    def __call__(self, batch: Batch) -> Batch:
        if not self.targets or self.translator is None or not batch.prepared:
            return batch
        requests: list[tuple[str, str, str]] = []
        slots: list[tuple[int, str, str, int]] = []
        # a field is translated unit by unit (its language segments, else the whole text), and
        # its units reassembled in order: kept where already in the target language
        pieces: dict[tuple[int, str, str], tuple[Prepared, list[str]]] = {}
        for p in batch.prepared:
            missing: set[str] = set()
            for f in p.record.texts:
                units = field_units(p, f)
                for tgt in self.targets:
                    keep = (tgt, UNDETERMINED)
                    if all(lang in keep for lang, _ in units):
                        continue
                    lacking = {f"{lang}->{tgt}" for lang, _ in units if lang not in keep}
                    lacking = {pair for pair in lacking if not self._can(*pair.split("->"))}
                    if lacking:
                        missing |= lacking
                        continue
                    parts: list[str] = []
                    for lang, text in units:
                        if lang not in keep:
                            requests.append((text, lang, tgt))
                            slots.append((id(p), f, tgt, len(parts)))
                        parts.append(text)
                    pieces[(id(p), f, tgt)] = (p, parts)
            for pair in missing:
                self.untranslated[pair] += 1
        if not requests:
            return batch
        try:
            out = self.translator.translate_many(requests)
        except XlidxError as exc:
            fail_batch(batch, "translate", exc)
            return batch
        for (pid, f, tgt, i), text in zip(slots, out, strict=True):
            pieces[(pid, f, tgt)][1][i] = text
        for (_pid, f, tgt), (p, parts) in pieces.items():
            p.translations.setdefault(f, {})[tgt] = "\n\n".join(parts)
        return batch


def embed_stage(
    embedder: EmbedderLike, detector: Detector | None = None
) -> Callable[[Batch], Batch]:
    """Split each record into passages and embed them. A record with language segments gets
    each passage's language from ``detector`` (:func:`detect_passages`); every other passage
    is in its document's language."""

    def stage(batch: Batch) -> Batch:
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
            fail_batch(batch, "embed", exc)
            return batch
        for p, v in zip(owners, vectors, strict=True):
            p.vectors.append([float(x) for x in v])
        for p in batch.prepared:
            mixed = p.segments and detector is not None and len(p.passages) > 1
            p.passage_langs = (
                detect_passages(p.passages, p.lang, detector)
                if mixed and detector is not None
                else [p.lang] * len(p.passages)
            )
        return batch

    return stage
