"""Write prepared records to the index with the client library's bulk helper (the backend's).

* Requests are bounded by both document count and bytes (``streaming_bulk``'s own chunking);
  big batches are written by a few threads at once, like ``parallel_bulk``.
* 429 is retried per item by ``streaming_bulk``; 502/503/504, timeouts and connection errors
  fail a whole request, which is sent again here (what was not yet answered) with exponential
  backoff and jitter under a :class:`~xlidx.pipeline.patience.Patience`, as are documents
  refused one by one with 429 or 5xx (the ids are fixed, so a retry never duplicates one).
* Per-item failures (mapping errors, documents that are too large) become dead letters with
  the record and the cluster's reason. They never stop the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from xlidx.backends.base import Backend
from xlidx.documents import UNDETERMINED, DeadLetter, Prepared
from xlidx.errors import BackendError, transient_status
from xlidx.indices.calibration import Calibration
from xlidx.pipeline.patience import Patience
from xlidx.pipeline.segments import field_units

DEFAULT_MAX_DOCS = 500
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def build_document(
    p: Prepared,
    *,
    model: str,
    now: datetime | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The ``_source`` of one prepared record (pure); with ``calibration``, its passage
    vectors are centered as it says (:mod:`xlidx.indices.calibration`)."""
    rec = p.record
    i18n: dict[str, dict[str, str]] = {}
    for f in rec.texts:
        per_lang = dict(p.translations.get(f, {}))  # a field's text in each target language
        originals: dict[str, list[str]] = {}
        for lang, text in field_units(p, f):  # the original, by language segment
            if lang != UNDETERMINED:
                originals.setdefault(lang, []).append(text)
        for lang, texts in originals.items():
            # where a target language is also a segment's, the translation holds the whole
            # field in it (that segment included); else the segments of the language
            per_lang.setdefault(lang, "\n\n".join(texts))
        if per_lang:
            i18n[f] = per_lang
    langs = sorted({lang for d in i18n.values() for lang in d})
    langs_of_passages = [
        p.passage_langs[n] if n < len(p.passage_langs) else p.lang for n in range(len(p.vectors))
    ]
    translated = sorted({lang for d in p.translations.values() for lang in d})
    passages = (
        calibration.passages(p.vectors, langs_of_passages)
        if calibration is not None
        else [{"vector": v, "n": n, "lang": langs_of_passages[n]} for n, v in enumerate(p.vectors)]
    )
    return {
        **rec.extra,
        **rec.texts,
        "i18n": i18n,
        "xlidx": {
            "id": rec.id,
            "lang": p.lang,
            "lang_declared": bool(rec.lang),  # kept by `xlidx index migrate --redetect`
            "langs": langs,
            "field_langs": dict(p.field_langs),
            "translated_to": translated,
            "content_hash": rec.content_hash,
            "content_id": rec.content_id,
            "model": model,
            "passage_count": len(p.vectors),
            "indexed_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            "passages": passages,
        },
    }


def slice_bounds(n: int, max_docs: int, concurrency: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, end)`` slices of ``n`` actions for up to ``concurrency`` threads,
    each a whole number of ``max_docs`` requests, so that threading sends no more requests
    than one thread would (pure)."""
    if n <= 0:
        return []
    requests = -(-n // max_docs)
    slices = max(1, min(concurrency, requests))
    base, extra = divmod(requests, slices)
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(slices):
        end = min(n, start + (base + (1 if i < extra else 0)) * max_docs)
        bounds.append((start, end))
        start = end
    return bounds


@dataclass
class WriteResult:
    indexed: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    retries: int = 0
    transient: int = 0  # of ``dead``, those the cluster turned away with 429 or 5xx


class _TurnedAway(BackendError):
    """Some documents of a request were refused with 429 or 5xx (the rest was written)."""


@dataclass
class BulkWriter:
    """Writes index actions; one instance per run (no I/O in the constructor).

    Large batches are cut into up to ``concurrency`` contiguous slices of whole requests
    (:func:`slice_bounds`), written in parallel threads,
    each through ``streaming_bulk`` (which bounds requests by ``max_docs`` and ``max_bytes``
    and serializes every document once). A request that fails as a whole (nothing answered,
    429, 502/503/504) and documents refused one by one with 429 or 5xx are sent again under
    ``patience``: a time budget for in-process ingest, a few retries on a queue worker.
    """

    backend: Backend
    max_docs: int = DEFAULT_MAX_DOCS
    max_bytes: int = DEFAULT_MAX_BYTES
    concurrency: int = 4
    patience: Patience = field(default_factory=lambda: Patience(attempts=6))
    item_retries: int = 3  # the bulk helper's own retries of documents refused with 429

    def write(
        self,
        index: str,
        batch: Sequence[Prepared],
        *,
        model: str,
        calibration: Calibration | None = None,
    ) -> WriteResult:
        actions = [
            {
                "_op_type": "index",
                "_index": index,
                "_id": p.record.id,
                "_source": build_document(p, model=model, calibration=calibration),
            }
            for p in batch
        ]
        return self.write_actions(actions, {p.record.id: p for p in batch})

    def write_actions(
        self, actions: Sequence[Mapping[str, Any]], records: Mapping[str, Prepared] | None = None
    ) -> WriteResult:
        """Write prepared actions; per-item failures become dead letters (with their record)."""
        records = records or {}
        n = len(actions)
        parts = [actions[a:b] for a, b in slice_bounds(n, self.max_docs, self.concurrency)]
        if len(parts) <= 1:
            results = [self._write_slice(parts[0] if parts else [], records)]
        else:
            with ThreadPoolExecutor(
                max_workers=len(parts), thread_name_prefix="xlidx-bulk"
            ) as pool:
                results = list(pool.map(lambda part: self._write_slice(part, records), parts))
        total = WriteResult()
        for r in results:
            total.indexed += r.indexed
            total.retries += r.retries
            total.transient += r.transient
            total.dead.extend(r.dead)
        return total

    def _write_slice(
        self, actions: Sequence[Mapping[str, Any]], records: Mapping[str, Prepared]
    ) -> WriteResult:
        result = WriteResult()
        pending = list(actions)  # not yet written nor refused for good
        refused: dict[str, Mapping[str, Any]] = {}  # id -> the item of its last 429/5xx refusal
        tries = 0

        def send() -> None:
            nonlocal pending, tries
            tries += 1
            finished: set[str] = set()
            try:
                for ok, item in self.backend.bulk(
                    pending,
                    chunk_size=self.max_docs,
                    max_chunk_bytes=self.max_bytes,
                    max_retries=self.item_retries,
                    initial_backoff=self.patience.initial,
                    max_backoff=self.patience.max_wait,
                ):
                    info = next(iter(item.values()))
                    doc_id = str(info.get("_id"))
                    if not ok and transient_status(info.get("status")):
                        refused[doc_id] = item  # sent again below, while patience lasts
                        continue
                    finished.add(doc_id)
                    refused.pop(doc_id, None)
                    self._record(ok, item, records, result)
            finally:  # whatever was answered for good is never sent again
                pending = [a for a in pending if str(a.get("_id")) not in finished]
            if pending:
                statuses = [next(iter(refused[i].values())).get("status") for i in refused]
                status = max((s for s in statuses if s), default=503)
                raise _TurnedAway(
                    f"the cluster turned away {len(pending)} document(s) (HTTP {status})",
                    status=status,
                )

        try:
            self.patience.call("write documents", send)
        except _TurnedAway:  # patience ran out: what is still refused becomes dead letters
            for item in refused.values():
                result.transient += 1
                self._record(False, item, records, result)
        result.retries = max(0, tries - 1)
        return result

    @staticmethod
    def _record(
        ok: bool, item: Mapping[str, Any], records: Mapping[str, Prepared], result: WriteResult
    ) -> None:
        info = next(iter(item.values()))
        if ok:
            result.indexed += 1
            return
        doc_id = str(info.get("_id"))
        p = records.get(doc_id)
        error = info.get("error")
        reason = (
            f"{error.get('type')}: {error.get('reason')}"
            if isinstance(error, dict)
            else str(error or f"HTTP {info.get('status')}")
        )
        result.dead.append(
            DeadLetter(
                origin=p.record.origin if p else "?",
                stage="write",
                reason=f"rejected by the cluster (HTTP {info.get('status')}): {reason}",
                record=p.record.as_input() if p else None,
                id=doc_id,
            )
        )
