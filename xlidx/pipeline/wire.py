"""Batches as JSON-safe dicts, for the messages between queued stages (pure).

Vectors travel as base64 float32 (a 384-d vector is 2 KB instead of about 8 KB of JSON
numbers); everything else is plain JSON. ``decode_*(encode_*(x)) == x`` for every field a
later stage reads; passage texts are not carried (only their vectors are written).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xlidx.documents import Prepared, Record


def encode_record(rec: Record) -> dict[str, Any]:
    return {
        "id": rec.id,
        "texts": dict(rec.texts),
        "extra": dict(rec.extra),
        "lang": rec.lang,
        "origin": rec.origin,
        "content_hash": rec.content_hash,
        "content_id": rec.content_id,
    }


def decode_record(d: Mapping[str, Any]) -> Record:
    return Record(
        id=str(d["id"]),
        texts=dict(d["texts"]),
        extra=dict(d.get("extra") or {}),
        lang=d.get("lang"),
        origin=str(d.get("origin", "?")),
        content_hash=str(d["content_hash"]),
        content_id=str(d.get("content_id", "")),
    )


def encode_vectors(vectors: Sequence[Sequence[float]]) -> dict[str, Any] | None:
    if not vectors:
        return None
    arr = np.asarray(vectors, dtype="<f4")
    return {"dim": int(arr.shape[1]), "b64": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_vectors(d: Mapping[str, Any] | None) -> list[list[float]]:
    if not d:
        return []
    arr = np.frombuffer(base64.b64decode(d["b64"]), dtype="<f4").reshape(-1, int(d["dim"]))
    return [[float(x) for x in row] for row in arr]


def encode_prepared(p: Prepared) -> dict[str, Any]:
    return {
        "record": encode_record(p.record),
        "field_langs": dict(p.field_langs),
        "translations": {f: dict(t) for f, t in p.translations.items()},
        "vectors": encode_vectors(p.vectors),
        "segments": {f: [list(s) for s in segs] for f, segs in p.segments.items()},
        "passage_langs": list(p.passage_langs),
    }


def decode_prepared(d: Mapping[str, Any]) -> Prepared:
    return Prepared(
        record=decode_record(d["record"]),
        field_langs=dict(d.get("field_langs") or {}),
        translations={f: dict(t) for f, t in (d.get("translations") or {}).items()},
        vectors=decode_vectors(d.get("vectors")),
        segments={
            f: [(str(lang), str(text)) for lang, text in segs]
            for f, segs in (d.get("segments") or {}).items()
        },
        passage_langs=[str(x) for x in d.get("passage_langs") or []],
    )
