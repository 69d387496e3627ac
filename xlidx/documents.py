"""The record and batch types passed between pipeline stages, and record validation.

A source yields :class:`RawItem` s (a parsed object, or the reason it could not be parsed);
:func:`to_record` validates one into a :class:`Record` or a :class:`DeadLetter`. Stages then
fill a :class:`Prepared` per record (languages, translations, passage vectors) that the writer
turns into an index action.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT_FIELDS: tuple[str, ...] = ("title", "body", "text")
RESERVED_FIELDS = frozenset({"xlidx", "i18n"})
DEFAULT_MAX_DOC_BYTES = 5 * 1024 * 1024
UNDETERMINED = "und"

_LANG_CODE = re.compile(r"^[a-z]{2,3}$")


def is_lang_code(code: str) -> bool:
    """ISO 639-1/-3 shaped: two or three lowercase letters."""
    return bool(_LANG_CODE.match(code))


@dataclass(frozen=True)
class RawItem:
    """One item from a source: a parsed object, or why it could not be parsed."""

    origin: str  # "file.jsonl:12", "stdin:3", "docs/a.txt", "index:old/_doc/42"
    payload: Any = None
    error: str | None = None
    raw: str | None = None  # the unparsed text, kept for dead letters
    end: int | None = None  # a file source's byte offset after this item (for checkpoints)
    line: int = 0  # the file's last line of this item (for checkpoints)


@dataclass(frozen=True)
class Record:
    """A validated input document."""

    id: str
    texts: Mapping[str, str]  # text field -> non-empty text, in configured field order
    extra: Mapping[str, Any]  # every other field, written to the index as it came
    lang: str | None  # declared by the record, else None (detected later)
    origin: str
    content_hash: str  # content + what processes it (model, targets): decides "unchanged"
    content_id: str = ""  # content alone: lets a migration recompute content_hash

    @property
    def size(self) -> int:
        return sum(len(t.encode("utf-8")) for t in self.texts.values())

    def as_input(self) -> dict[str, Any]:
        """The record as it came in (id, fields, texts, declared language): what a dead letter
        keeps so that it can be ingested again."""
        return {
            "id": self.id,
            **self.extra,
            **self.texts,
            **({"lang": self.lang} if self.lang else {}),
        }


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be indexed, with the stage that refused it and why."""

    origin: str
    stage: str  # "read", "validate", "detect", "translate", "embed", "write"
    reason: str
    record: Any  # the parsed object, or the raw text when it could not be parsed
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "stage": self.stage,
            "reason": self.reason,
            "id": self.id,
            "record": self.record,
        }

    @classmethod
    def for_record(cls, rec: Record, stage: str, reason: str) -> DeadLetter:
        return cls(rec.origin, stage, reason, rec.as_input(), rec.id)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeadLetter:
        return cls(
            origin=str(d.get("origin", "?")),
            stage=str(d.get("stage", "?")),
            reason=str(d.get("reason", "")),
            record=d.get("record"),
            id=d.get("id"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)


@dataclass
class Prepared:
    """A record on its way through the stages."""

    record: Record
    field_langs: dict[str, str] = field(default_factory=dict)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> lang -> text
    passages: list[str] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    # fields whose paragraphs are in several languages: field -> [(lang, text), …]
    segments: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    passage_langs: list[str] = field(default_factory=list)  # one per vector

    @property
    def lang(self) -> str:
        """The document's language: its declared one, else that of its longest text field."""
        if self.record.lang:
            return self.record.lang
        if not self.field_langs:
            return UNDETERMINED
        longest = max(self.record.texts, key=lambda f: len(self.record.texts[f]))
        return self.field_langs.get(longest, UNDETERMINED)


def canonical_hash(obj: Any) -> str:
    """SHA-256 of a canonical JSON rendering (sorted keys, no whitespace)."""
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def to_record(
    item: RawItem,
    *,
    text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
    id_field: str = "id",
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    pipeline_fingerprint: str = "",
) -> Record | DeadLetter:
    """Validate one raw item (pure). Bad input becomes a dead letter with a reason."""
    if item.error is not None:
        return DeadLetter(item.origin, "read", item.error, item.raw)
    obj = item.payload
    if not isinstance(obj, dict):
        return DeadLetter(
            item.origin, "validate", f"expected a JSON object, got {type(obj).__name__}", obj
        )
    doc_id: str | None = None
    if id_field in obj and obj[id_field] is not None:
        raw_id = obj[id_field]
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
            return DeadLetter(
                item.origin,
                "validate",
                f"field {id_field!r} must be a string or an integer, got {type(raw_id).__name__}",
                obj,
            )
        doc_id = str(raw_id).strip()
        if not doc_id or len(doc_id.encode("utf-8")) > 512:
            return DeadLetter(
                item.origin, "validate", f"field {id_field!r} must be 1 to 512 bytes", obj
            )
    reserved = sorted(RESERVED_FIELDS & set(obj))
    if reserved:
        return DeadLetter(
            item.origin, "validate", f"field name(s) reserved by xlidx: {', '.join(reserved)}", obj
        )
    texts: dict[str, str] = {}
    for name in text_fields:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return DeadLetter(
                item.origin,
                "validate",
                f"text field {name!r} must be a string, got {type(value).__name__}",
                obj,
                doc_id,
            )
        if value.strip():
            texts[name] = value
    if not texts:
        return DeadLetter(
            item.origin,
            "validate",
            f"no text: fields {', '.join(text_fields)} are missing or empty",
            obj,
            doc_id,
        )
    lang = obj.get("lang")
    if lang is not None:
        if not isinstance(lang, str) or not is_lang_code(lang.strip().lower()):
            return DeadLetter(
                item.origin,
                "validate",
                f"field 'lang' must be an ISO 639 code like 'en', got {lang!r}",
                obj,
                doc_id,
            )
        lang = lang.strip().lower()
    skip = {*text_fields, id_field, "lang"}
    extra = {k: v for k, v in obj.items() if k not in skip}
    content = {"texts": texts, "extra": extra, "lang": lang}
    size = sum(len(t.encode("utf-8")) for t in texts.values())
    if size > max_doc_bytes:
        return DeadLetter(
            item.origin,
            "validate",
            f"document text is {size / 1e6:.1f} MB, over the {max_doc_bytes / 1e6:.1f} MB limit "
            "(--max-doc-bytes)",
            {"id": doc_id, "truncated_preview": next(iter(texts.values()))[:200]},
            doc_id,
        )
    content_id = canonical_hash(content)
    return Record(
        id=doc_id if doc_id is not None else content_id[:32],
        texts=texts,
        extra=extra,
        lang=lang,
        origin=item.origin,
        content_hash=content_hash(content_id, pipeline_fingerprint),
        content_id=content_id,
    )


def content_hash(content_id: str, pipeline_fingerprint: str) -> str:
    return canonical_hash([content_id, pipeline_fingerprint])
