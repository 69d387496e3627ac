"""The stages of ingest, once: check → prepare (detect → segment → translate) → embed → write.

:class:`Pipeline` holds what the stages need (backend, detector, translator, embedder,
writer, calibration), all passed in: it loads no model and makes no request when built.
In-process ingest (:mod:`xlidx.workflows.ingest`) runs ``check``, ``prepare`` and ``embed``
overlapped in threads and ``write`` in its own; the Celery tasks (``workers/tasks.py``) run
one stage each: translate (``check`` then ``prepare``), embed, write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from xlidx.errors import ModelError
from xlidx.indices.existing import skip_unchanged
from xlidx.pipeline.detect import detect_stage
from xlidx.pipeline.segments import segment_stage
from xlidx.pipeline.stages import Batch, EmbedderLike, Translate, TranslatorLike, embed_stage

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.indices.manage import IndexState
    from xlidx.indices.writer import BulkWriter
    from xlidx.pipeline.calibration import Calibration
    from xlidx.pipeline.detect import Detector
    from xlidx.pipeline.options import IngestOptions
    from xlidx.pipeline.patience import Patience
    from xlidx.spec import IndexSpec

T = TypeVar("T")
Progress = Callable[[str, int], None]  # (stage, records done): ("embedding", 0), ("done", 64)


def quiet(_stage: str, _n: int) -> None:
    """The progress callback that hears nothing (the default of every ingest)."""


@dataclass
class Written:
    """What :meth:`Pipeline.write` wrote; the records it refused went to the batch's ``dead``."""

    indexed: int = 0
    languages: Counter[str] = field(default_factory=Counter)  # of the documents written
    transient: int = 0  # of the refused, those the cluster turned away for now (429, 502, 503, 504)


class Pipeline:
    """The ingest stages over one xlidx index.

    ``index`` is what is read and written: the alias, or the concrete version an in-process
    run pinned. ``embedding`` describes the vectors' model (what ``write`` records with each
    document); ``calibration`` gives the calibration to center new passages with at the time
    of the write. ``patience``, when given, waits out an unavailable cluster around the
    lookups (the writer has its own). Each stage needs only its own parts (``embed`` needs no
    ``backend``): a Celery task builds a pipeline with what its stage needs.
    """

    def __init__(
        self,
        backend: Backend | None,
        index: str,
        *,
        options: IngestOptions,
        detector: Detector | None = None,
        translator: TranslatorLike | None = None,
        embedder: EmbedderLike | None = None,
        embedding: Mapping[str, Any] | None = None,
        writer: BulkWriter | None = None,
        calibration: Callable[[], Calibration | None] = lambda: None,
        patience: Patience | None = None,
        progress: Progress = quiet,
    ) -> None:
        self.backend = backend
        self.index = index
        self.options = options
        self.detector = detector
        self.translator = translator
        self.embedder = embedder
        self.embedding = dict(embedding or {})
        self.writer = writer
        self.calibration = calibration
        self.patience = patience
        self.progress = progress
        self._translate = Translate(translator, options.translate_to)

    @property
    def untranslated(self) -> Counter[str]:
        """Documents per language pair left untranslated for want of a package."""
        return self._translate.untranslated

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self.patience.call(what, fn) if self.patience is not None else fn()

    def check(self, batch: Batch) -> Batch:
        """Drop the records the index already holds with the same content."""
        self.progress("checking", 0)
        backend = _need(self.backend, "a backend")
        return self._call("look up documents", lambda: skip_unchanged(backend, self.index, batch))

    def prepare(self, batch: Batch) -> Batch:
        """Detect each field's language, split fields that mix languages into segments, and
        translate to ``options.translate_to``: the one place that orders these steps."""
        detector = _need(self.detector, "a language detector")
        detect_stage(batch.prepared, detector)
        segment_stage(batch.prepared, detector)
        self.progress("translating" if self.options.translate_to else "detecting", 0)
        return self._translate(batch)

    def embed(self, batch: Batch) -> Batch:
        """Split each record into passages and embed them."""
        self.progress("embedding", 0)
        return embed_stage(_need(self.embedder, "an embedder"), self.detector)(batch)

    def write(self, batch: Batch) -> Written:
        """Bulk-write the batch's records; those the cluster refuses join ``batch.dead``."""
        if not batch.prepared:
            return Written()
        self.progress("writing", 0)
        res = _need(self.writer, "a writer").write(
            self.index,
            batch.prepared,
            model=str(self.embedding.get("model")),
            calibration=self.calibration(),
        )
        batch.dead.extend(res.dead)
        refused = {d.id for d in res.dead}
        langs = Counter(p.lang for p in batch.prepared if p.record.id not in refused)
        return Written(indexed=res.indexed, languages=langs, transient=res.transient)

    def record_translation(self, state: IndexState) -> None:
        """Record the translation packages used and the targets in the index's ``_meta``."""
        backend = _need(self.backend, "a backend")
        record_translation(backend, state, self.translator, self.options.translate_to)


def _need(part: T | None, what: str) -> T:
    if part is None:
        raise ModelError(f"this pipeline was built without {what}")
    return part


def record_translation(
    backend: Backend,
    state: IndexState,
    translator: TranslatorLike | None,
    translate_to: Sequence[str],
) -> None:
    """Keep ``_meta`` true to what produced the index's translations."""
    from xlidx.indices.manage import update_meta, version_state
    from xlidx.spec import merge_packages

    state = version_state(backend, state.index)  # fresh: a calibration may have moved it
    x = dict(state.xlidx_meta)
    used = translator.describe() if translator is not None else []
    packages = merge_packages(x.get("translation_packages", []), used)
    targets = sorted(set(x.get("translate_to", [])) | set(translate_to))
    if packages != x.get("translation_packages", []) or targets != x.get("translate_to", []):
        x["translation_packages"] = packages
        x["translate_to"] = targets
        update_meta(backend, state, x)


def index_spec(options: IngestOptions, embedding: Mapping[str, Any]) -> IndexSpec:
    """The spec of the index ``options`` ingest into, when it is created: its vectors are
    ``embedding``'s (an embedder's description with its ``source``)."""
    from xlidx.pipeline.detect import Detector
    from xlidx.spec import IndexSpec

    languages = options.detect_among
    return IndexSpec(
        name=options.index,
        embedding=dict(embedding),
        text_fields=options.text_fields,
        languages=languages,
        translate_to=options.translate_to,
        vector=options.vector,
        detection=Detector(languages, min_confidence=options.min_confidence).describe(),
    )
