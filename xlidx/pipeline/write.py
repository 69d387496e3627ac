"""The document xlidx writes for a prepared record (pure).

:mod:`xlidx.indices.writer` writes them:

* Requests are bounded by both document count and bytes (``streaming_bulk``'s own chunking);
  big batches are written by a few threads at once, like ``parallel_bulk``.
* 429 is retried per item by ``streaming_bulk``; 502/503/504, timeouts and connection errors
  fail a whole request, which is sent again here (what was not yet answered) with exponential
  backoff and jitter under a :class:`~xlidx.pipeline.patience.Patience`, as are documents
  refused one by one with 429, 502, 503 or 504 (the ids are fixed, so a retry never duplicates one).
* Per-item failures (mapping errors, documents that are too large) become dead letters with
  the record and the cluster's reason. They never stop the run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from xlidx.documents import UNDETERMINED, Prepared
from xlidx.pipeline.calibration import Calibration
from xlidx.pipeline.segments import field_units


def build_document(
    p: Prepared,
    *,
    model: str,
    now: datetime | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The ``_source`` of one prepared record (pure); with ``calibration``, its passage
    vectors are centered as it says (:mod:`xlidx.pipeline.calibration`)."""
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
