"""The document ``xlidx ingest`` would write, for documents that something else writes.

An application that writes plain documents to an index that ``xlidx connect`` set up has
them enriched by the cluster's ingest pipeline, which sends each one to ``xlidx serve``
(``POST /indices/{name}/enrich``); the service answers with :func:`enrich`. It runs the
same stages as ingest (:class:`~xlidx.workflows.pipeline.Pipeline`: detect, segment,
translate, embed) with the options the index records (its text fields, languages, detection
and translation targets), and builds the document with
:func:`~xlidx.pipeline.write.build_document` and the index's current calibration: the
``i18n`` and ``xlidx`` parts of exactly what ingest writes. Nothing is written here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xlidx.documents import RawItem
from xlidx.errors import IndexNotFound

if TYPE_CHECKING:
    from xlidx.pipeline.options import IngestOptions
    from xlidx.workflows.index import Index

#: The parts of a document that enrichment adds; an application's own fields stay as written.
ADDED = ("i18n", "xlidx")


@dataclass(frozen=True)
class Enriched:
    """One document's enrichment: the fields ingest adds (``i18n``, ``xlidx``), or why it
    has none (what ingest would have dead-lettered it for)."""

    id: str | None
    fields: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"id": self.id, "error": self.error}
        return {"id": self.id, **(self.fields or {})}


def enrich(
    index: Index, documents: Sequence[tuple[str | None, Mapping[str, Any]]], *, device: str = "auto"
) -> list[Enriched]:
    """For each ``(id, source)``, what ingest would add to it in ``index`` (in order).

    ``id`` is the document's ``_id`` (``None``: the cluster generates one; the record's id is
    then its content's hash, as in ingest). A source with an ``id`` field keeps it, as
    ``ingest --from-index`` does.
    """
    from xlidx.pipeline.fingerprint import pipeline_fingerprint
    from xlidx.pipeline.options import IngestOptions
    from xlidx.pipeline.stages import batches
    from xlidx.pipeline.write import build_document
    from xlidx.workflows.pipeline import Pipeline
    from xlidx.workflows.vectors import passage_detector

    if not documents:
        return []
    encoder = index.searcher(device).encoder
    x = encoder.facts.state().xlidx_meta
    detector = passage_detector(x)
    options = recorded_options(
        x, IngestOptions(index=index.name, min_confidence=detector.min_confidence)
    )
    embedder = encoder.embedder()
    embedding = embedder.describe()
    translator = index.cluster.translator(device) if options.translate_to else None
    pipe = Pipeline(
        None, index.name, options=options, detector=detector, translator=translator,
        embedder=embedder, embedding=embedding,
    )  # fmt: skip
    items = []
    for n, (doc_id, source) in enumerate(documents):
        payload = dict(source)
        if doc_id is not None:
            payload.setdefault("id", doc_id)
        items.append(RawItem(f"request:{n}", payload=payload))
    fingerprint = pipeline_fingerprint(
        embedding, translate_to=options.translate_to, text_fields=options.text_fields
    )
    (batch,) = batches(
        items, text_fields=options.text_fields, max_doc_bytes=options.max_doc_bytes,
        batch_size=len(items) + 1, fingerprint=fingerprint,
    )  # fmt: skip
    if batch.prepared:
        pipe.embed(pipe.prepare(batch))
    calibration = encoder.calibration()
    model = str(embedding.get("model"))
    made = {
        p.record.origin: build_document(p, model=model, calibration=calibration)
        for p in batch.prepared
    }
    failed = {d.origin: d.reason for d in batch.dead}
    out: list[Enriched] = []
    for (doc_id, _source), item in zip(documents, items, strict=True):
        if item.origin in made:
            doc = made[item.origin]
            out.append(Enriched(doc_id, {k: doc[k] for k in ADDED}))
        else:
            out.append(Enriched(doc_id, error=failed.get(item.origin, "not enriched")))
    return out


def pending(index: Index) -> Iterator[RawItem]:
    """The documents of ``index`` that its ingest pipeline left ``xlidx.pending`` (the
    service was down, or refused them), as ingest's input: the application's fields, the
    ``_id`` as the record id. Ingesting them writes each in place, complete."""
    from xlidx.indices.manage import resolve

    state = resolve(index.backend, index.name)
    if state is None:
        raise IndexNotFound(f"no xlidx index {index.name!r}")
    for hit in index.backend.pending_documents(state.index):
        src = {k: v for k, v in hit.source.items() if k not in ADDED}
        src.setdefault("id", hit.id)
        yield RawItem(f"index:{hit.index}/{hit.id}", payload=src)


def pending_options(index: Index, options: IngestOptions | None = None) -> IngestOptions:
    """``options`` (default: the defaults) with what the index records for its documents:
    the text fields and translation targets its ingest pipeline enriches with."""
    from xlidx.indices.manage import resolve
    from xlidx.pipeline.options import IngestOptions

    state = resolve(index.backend, index.name)
    if state is None:
        raise IndexNotFound(f"no xlidx index {index.name!r}")
    return recorded_options(state.xlidx_meta, options or IngestOptions())


def recorded_options(xlidx_meta: Mapping[str, Any], base: IngestOptions) -> IngestOptions:
    """``base`` with what an index records for its documents (pure): its text fields,
    languages and translation targets; no checkpoint (the input is not a file)."""
    from dataclasses import replace

    return replace(
        base,
        text_fields=tuple(xlidx_meta.get("text_fields") or base.text_fields),
        languages=tuple(xlidx_meta.get("languages") or ()),
        translate_to=tuple(xlidx_meta.get("translate_to") or base.translate_to),
        checkpoints=None,
    )
