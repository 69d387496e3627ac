"""Relabel the languages of stored documents for ``xlidx index migrate --redetect``.

Each document's original text fields are detected again (every language by default, or the
``--languages`` given), its language segments found again, and its language fields
(``i18n.<field>.<lang>``, ``xlidx.lang``, ``xlidx.langs``, ``xlidx.field_langs``, the
passages' ``lang``) rebuilt. The vectors are kept: they were computed from the text, not from
the labels. Translations are kept where a field's language did not change; where it did,
they were made from the wrong source language, so they are made again with the installed
packages (a translator) or, without one, dropped and counted. A document whose record
declared its language (``xlidx.lang_declared``) keeps it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from xlidx.documents import UNDETERMINED, Prepared, Record, canonical_hash
from xlidx.errors import ModelError
from xlidx.indices.calibrate import raw_vector
from xlidx.pipeline.calibration import Calibration, from_index_meta
from xlidx.pipeline.detect import Detector, detect_stage
from xlidx.pipeline.segments import segment_stage
from xlidx.pipeline.stages import Batch, Translate, TranslatorLike
from xlidx.pipeline.write import build_document


@dataclass
class RedetectReport:
    documents: int = 0
    relabelled: int = 0  # documents whose language (or a field's, or a segment's) changed
    languages_before: Counter[str] = field(default_factory=Counter)
    languages_after: Counter[str] = field(default_factory=Counter)
    retranslated: int = 0  # fields translated again from their new language
    translations_dropped: int = 0  # documents with a language pair no package translates

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "relabelled": self.relabelled,
            "languages_before": dict(self.languages_before.most_common()),
            "languages_after": dict(self.languages_after.most_common()),
            "retranslated": self.retranslated,
            "translations_dropped": self.translations_dropped,
        }


def _declared(x: Mapping[str, Any], texts: Mapping[str, str], extra: Mapping[str, Any]) -> bool:
    """Whether the record declared its language: recorded since mapping v2; before that, the
    record's content hash holds its declared ``lang`` (None when it was detected)."""
    if "lang_declared" in x:
        return bool(x["lang_declared"])
    content = {"texts": dict(texts), "extra": dict(extra), "lang": x.get("lang")}
    return bool(x.get("content_id")) and canonical_hash(content) == x.get("content_id")


def _prepared(
    doc: Mapping[str, Any], text_fields: Sequence[str], calibration: Calibration | None
) -> Prepared:
    x = doc.get("xlidx") or {}
    texts = {f: doc[f] for f in text_fields if isinstance(doc.get(f), str) and doc[f].strip()}
    extra = {k: v for k, v in doc.items() if k not in (*text_fields, "i18n", "xlidx", "id")}
    record = Record(
        id=str(x.get("id") or doc.get("id")),
        texts=texts,
        extra=extra,
        lang=x.get("lang") if _declared(x, texts, extra) else None,
        origin=f"index:{x.get('id')}",
        content_hash=str(x.get("content_hash", "")),
        content_id=str(x.get("content_id", "")),
    )
    p = Prepared(record)
    # the raw vectors: the new version is calibrated afresh
    p.vectors = [[float(f) for f in raw_vector(v, calibration)] for v in x.get("passages") or []]
    return p


def redetector(
    meta: Mapping[str, Any],
    detector: Detector,
    translator: TranslatorLike | None,
    report: RedetectReport,
) -> Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]]:
    text_fields = tuple(meta.get("text_fields", ()))
    targets = tuple(meta.get("translate_to", ()))
    translate = Translate(translator, targets)
    calibration = from_index_meta(meta)

    def transform(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        batch = [_prepared(doc, text_fields, calibration) for doc in docs]
        detect_stage(batch, detector)
        segment_stage(batch, detector)
        redo: list[Prepared] = []  # the changed fields of each document, to translate again
        for doc, p in zip(docs, batch, strict=True):
            x = doc.get("xlidx") or {}
            report.documents += 1
            report.languages_before[str(x.get("lang", UNDETERMINED))] += 1
            report.languages_after[p.lang] += 1
            old_langs = x.get("field_langs") or {}
            old_i18n = doc.get("i18n") or {}
            changed: dict[str, str] = {}
            for f, text in p.record.texts.items():
                # a field in one language that kept it keeps its translations; a field that
                # changed language, or mixes languages, is translated again
                if old_langs.get(f) == p.field_langs.get(f) and f not in p.segments:
                    old = old_i18n.get(f) or {}
                    kept = {lang: t for lang, t in old.items() if lang != p.field_langs[f]}
                    if kept:
                        p.translations[f] = kept
                else:
                    changed[f] = text
            # vectors are kept, and so are their languages where the document kept its own
            old_passages = x.get("passages") or []
            same_doc = not changed and p.lang == x.get("lang")
            p.passage_langs = [
                str(v.get("lang") or p.lang) if same_doc else p.lang for v in old_passages
            ]
            if changed or p.lang != x.get("lang"):
                report.relabelled += 1
            if changed and targets:
                part = Prepared(
                    replace(p.record, texts=changed),
                    field_langs={f: p.field_langs[f] for f in changed},
                    segments={f: s for f, s in p.segments.items() if f in changed},
                )
                redo.append(part)
        if redo:
            _translate_again(redo, batch)
        out: list[dict[str, Any]] = []
        for doc, p in zip(docs, batch, strict=True):
            x = doc.get("xlidx") or {}
            new = build_document(p, model=str(x.get("model", "")))
            for keep in ("content_hash", "content_id", "indexed_at"):
                if keep in x:
                    new["xlidx"][keep] = x[keep]
            out.append(new)
        return out

    def _translate_again(parts: list[Prepared], batch: list[Prepared]) -> None:
        owners = {p.record.id: p for p in batch}
        before = sum(translate.untranslated.values())
        work = Batch(prepared=list(parts))
        translate(work)
        if work.dead:
            raise ModelError(
                f"translating relabelled documents failed ({work.dead[0].reason}); the alias "
                "was not moved"
            )
        for part in parts:
            owner = owners[part.record.id]
            for f in part.record.texts:
                if part.translations.get(f):
                    owner.translations[f] = part.translations[f]
                    report.retranslated += 1
        report.translations_dropped += sum(translate.untranslated.values()) - before

    return transform
