"""Calibrate an index version: estimate the per-language means from its own documents, decide
whether to center, record it in ``_meta``, and move the stored passage vectors to it.

The means come from a random sample of up to ``sample_docs`` documents per language (their
passage vectors, un-centered where a former calibration centered them). The query-side mean
of a language is the mean of the first sentences of those documents encoded as queries; a
model that encodes queries and documents alike (no prompts) uses the document mean for both.

Moving the vectors reads every document whose passages are not at the calibration's means
(:meth:`~xlidx.backends.base.Backend.stale_documents`), recomputes them from what each passage
stores (:mod:`xlidx.pipeline.calibration`) and writes them back through the bulk writer with
partial updates conditional on the document's sequence number, so a document re-ingested
meanwhile is left alone (it was written with the new calibration). Means that passages still
carry stay in ``_meta`` until no passage carries them (:func:`prune_retired_means`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from typing import Any, Protocol

import numpy as np

from xlidx.backends.base import Backend, RawHit
from xlidx.documents import UNDETERMINED
from xlidx.errors import BackendError, MappingError, XlidxError
from xlidx.indices.manage import IndexState, update_meta, version_state
from xlidx.indices.writer import BulkWriter
from xlidx.pipeline.calibration import (
    MIN_DOCS,
    SAMPLE_DOCS,
    Calibration,
    LanguageMeans,
    alike,
    average,
    close,
    decide,
    from_index_meta,
    language_component,
    mean_id,
)
from xlidx.pipeline.patience import Patience

FIELDS = {"center": {"type": "keyword"}, "norm": {"type": "float", "index": False}}
FIRST_SENTENCE_CHARS = 300
_SEED = 20240611  # the sample is random, and the same on every run (seeded on the id)
RETIRED_FOR = 600.0  # seconds a replaced mean is kept at least (writers cache for seconds)
REREAD_EVERY = 5.0  # seconds an ingest keeps the calibration it writes with before rereading
REWRITE_BATCH = 200  # documents read and updated at a time when moving vectors


class QuerySideEncoder(Protocol):
    """What encodes the first sentences for the query-side means (an embedder, or
    :class:`IndexModel`)."""

    def encode_query(self, texts: Sequence[str]) -> Any: ...


@dataclass
class Calibrated:
    """What :func:`calibrate` did."""

    calibration: Calibration
    added: list[str] = field(default_factory=list)  # languages given means of their own
    rewritten: int = 0  # documents whose passages were moved
    conflicts: int = 0  # documents changed meanwhile (already written with the calibration)
    lost: int = 0  # passages whose mean the calibration no longer has (left as they are)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        c = self.calibration
        return {
            "centering": c.centering,
            "mode": c.mode,
            "reason": c.reason,
            "languages": {k: v.to_meta() for k, v in sorted(c.languages.items())},
            "component": c.component.to_meta(),
            "added": self.added,
            "rewritten": self.rewritten,
            "conflicts": self.conflicts,
            "lost": self.lost,
            "seconds": round(self.seconds, 2),
            "warnings": list(c.warnings),
        }


def languages_due(cal: Calibration | None, counts: Mapping[str, int], min_docs: int) -> list[str]:
    """Languages with enough documents and no means of their own yet."""
    have = set(cal.languages) if cal is not None else set()
    return sorted(
        lang
        for lang, n in counts.items()
        if lang != UNDETERMINED and n >= min_docs and lang not in have
    )


def own_language_text(
    source: Mapping[str, Any], lang: str, text_fields: Sequence[str]
) -> str | None:
    """The text of a document in ``lang`` that stands for its queries (pure): its longest
    text field detected in ``lang`` (a body rather than a title over it in another language),
    else the ``lang`` segments of a mixed field, unless they are translations; ``None`` where
    the document holds no original text in ``lang``. A document written before fields had
    languages (no ``xlidx.field_langs``) gives its first text field, as before."""
    x = source.get("xlidx") or {}
    field_langs = x.get("field_langs") or {}
    texts = {f: source.get(f) for f in text_fields}
    present = {f: t for f, t in texts.items() if isinstance(t, str) and t.strip()}
    if not field_langs:
        return next(iter(present.values()), None)
    own = [t for f, t in present.items() if field_langs.get(f) == lang]
    if not own and lang not in (x.get("translated_to") or []):
        i18n = source.get("i18n") or {}
        own = [
            t for f in text_fields
            if isinstance(t := (i18n.get(f) or {}).get(lang), str) and t.strip()
        ]  # fmt: skip
    return max(own, key=len) if own else None


def first_sentence(text: str) -> str | None:
    from xlidx.pipeline.sentences import split_sentences

    sentences = split_sentences(text, max_chars=FIRST_SENTENCE_CHARS)
    return sentences[0] if sentences else None


@dataclass
class Sample:
    vectors: list[np.ndarray]  # raw passage vectors in the language
    sentences: list[str]  # first sentences of the documents' own-language text
    docs: int
    lost: int = 0  # passages whose mean is unknown (skipped)
    foreign: int = 0  # documents with no original text in the language (no sentence)


def sample(
    backend: Backend,
    index: str,
    lang: str,
    size: int,
    text_fields: Sequence[str],
    cal: Calibration | None,
) -> Sample:
    """Up to ``size`` random documents in ``lang``: their raw passage vectors in ``lang``,
    and the first sentence of each one's own-language text (:func:`own_language_text`)."""
    hits = backend.sample_language(index, lang, size, fields=text_fields, seed=_SEED)
    out = Sample([], [], 0)
    for h in hits:
        src = h.source
        passages = h.xlidx.get("passages") or []
        vecs = []
        for p in passages:
            if p.get("lang", lang) != lang or not p.get("vector"):
                continue
            try:
                vecs.append(raw_vector(p, cal))
            except MappingError:
                out.lost += 1  # its mean is gone: it cannot be read raw
        if not vecs:
            continue
        out.docs += 1
        out.vectors += vecs
        text = own_language_text(src, lang, text_fields)
        sentence = first_sentence(text) if text else None
        if sentence:
            out.sentences.append(sentence)
        else:
            out.foreign += 1
    return out


def raw_vector(passage: Mapping[str, Any], cal: Calibration | None) -> np.ndarray:
    if passage.get("center") is None:
        return np.asarray(passage["vector"], dtype=np.float64)
    if cal is None:
        raise MappingError(
            "a passage is centered but the index has no calibration in _meta: re-embed it "
            "with `xlidx index migrate`"
        )
    return cal.raw(passage)


def symmetric(embedding: Mapping[str, Any]) -> bool:
    """Queries and documents are encoded alike (no prompts, or the same one)."""
    return (embedding.get("query_prompt") or "") == (embedding.get("document_prompt") or "")


def calibrate(
    backend: Backend,
    state: IndexState,
    *,
    encoder: QuerySideEncoder | None = None,
    mode: str | None = None,
    full: bool = True,
    min_docs: int | None = None,
    sample_docs: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    now: datetime | None = None,
) -> Calibrated | None:
    """Calibrate ``state``'s index version and move its vectors; ``None`` when there is
    nothing to do (``full=False``: no language got means, and the mode is unchanged).

    ``full`` re-estimates every language's means (a mean that comes out the same as before,
    up to :data:`~xlidx.pipeline.calibration.SAME_MEAN`, is kept, so its vectors do not move);
    otherwise the languages that already have means keep them and only the languages now due
    get theirs. ``encoder`` encodes the first sentences for the query-side means of a model
    with prompts (it is needed only then).
    """
    t0 = time.monotonic()
    index = state.index
    x = state.xlidx_meta
    old = from_index_meta(x)
    mode = mode or (old.mode if old else "auto")
    min_docs = min_docs or (old.min_docs if old else MIN_DOCS)
    sample_docs = sample_docs or (old.sample_docs if old else SAMPLE_DOCS)
    counts = backend.language_counts(index)
    due = languages_due(None if full else old, counts, min_docs)
    keep = {} if full or old is None else dict(old.languages)
    langs = sorted({*keep, *due})
    embedding = x.get("embedding") or {}
    text_fields = list(x.get("text_fields") or ["text"])
    means: dict[str, list[float]] = dict(old.means) if old else {}

    def remember(vector: list[float], before: str | None) -> str:
        if before is not None and before in means and close(vector, means[before]):
            return before  # the same mean: the vectors centered with it stay where they are
        means[mean_id(vector)] = vector
        return mean_id(vector)

    samples: dict[str, np.ndarray] = {}
    languages: dict[str, LanguageMeans] = {}
    warnings: list[str] = []
    lost = 0
    for i, lang in enumerate(langs):
        if progress is not None:
            progress(f"sampling {lang}", i, len(langs))
        s = sample(backend, index, lang, sample_docs, text_fields, old)
        lost += s.lost
        if lang in keep:
            languages[lang] = keep[lang]
        elif s.docs < min_docs:
            continue  # fewer readable documents than counted: not this time
        if s.vectors:
            samples[lang] = np.stack(s.vectors)
        if lang in keep:
            continue
        was = old.languages.get(lang) if old else None
        doc_id = remember(average(s.vectors), was.document if was else None)
        if symmetric(embedding) or not s.sentences:
            languages[lang] = LanguageMeans(doc_id, doc_id, s.docs, 0)
            continue
        if encoder is None:
            raise MappingError(
                "calibrating this index needs its model (its queries have a prompt of their "
                "own), and none was given"
            )
        if 2 * s.foreign > s.docs:
            warnings.append(
                f"{lang}: {s.foreign} of {s.docs} sampled documents hold no text of their own in "
                f"{lang}; its queries are centered with its document mean"
            )
            languages[lang] = LanguageMeans(doc_id, doc_id, s.docs, 0)
            continue
        q_mean = average(np.asarray(encoder.encode_query(s.sentences), dtype=np.float64))
        q_id = remember(q_mean, was.query if was else None)
        languages[lang] = LanguageMeans(doc_id, q_id, s.docs, len(s.sentences))
    own_query = {k: means[m.query] for k, m in languages.items() if m.query != m.document}
    for a, b, cos in alike(own_query):
        warnings.append(
            f"the query-side means of {a} and {b} are nearly the same (cosine {cos:.4f}): their "
            "query samples share text in one language; their queries are centered with their "
            "document means"
        )
        for lang in (a, b):
            m = languages[lang]
            languages[lang] = LanguageMeans(m.document, m.document, m.docs, 0)
    added = [lang for lang in languages if lang not in keep]
    if not full and not added and (old is None or old.mode == mode):
        return None
    component = language_component(samples)
    centering, reason = decide(component, mode)
    fallback = None
    if languages:
        before = old.fallback if old and old.fallback else (None, None)
        fb_doc = remember(average([means[m.document] for m in languages.values()]), before[0])
        fb_query = remember(average([means[m.query] for m in languages.values()]), before[1])
        fallback = (fb_doc, fb_query)
    made_at = (now or datetime.now(timezone.utc)).isoformat(timespec="microseconds")
    cal = Calibration(
        model=str(embedding.get("model", "")),
        mode=mode,
        centering=centering,
        reason=reason,
        made_at=made_at,
        languages=languages,
        fallback=fallback,
        means=means,
        component=component,
        min_docs=min_docs,
        sample_docs=sample_docs,
        retired=dict(old.retired) if old else {},
        warnings=tuple(warnings),
    ).retiring(made_at)
    done = Calibrated(cal, added=added, lost=lost)
    cal = publish(backend, state, cal)
    done.rewritten, done.conflicts, lost = rewrite(backend, index, cal, progress=progress)
    done.lost += lost
    prune_retired_means(backend, index, cal)
    done.seconds = time.monotonic() - t0
    return done


def publish(backend: Backend, state: IndexState, cal: Calibration) -> Calibration:
    """Write ``cal`` into the version's ``_meta``, read fresh (other keys may have moved), and
    keeping every mean a calibration published meanwhile knows: its writers may use them."""
    backend.add_fields(state.index, {"xlidx": {"properties": {"passages": {
        "type": "nested", "properties": FIELDS}}}})  # fmt: skip
    fresh = version_state(backend, state.index)
    theirs = from_index_meta(fresh.xlidx_meta)
    if theirs is not None:
        cal = cal.merged(theirs)
    update_meta(backend, fresh, {**fresh.xlidx_meta, "calibration": cal.to_meta()})
    return cal


def still_current(backend: Backend, index: str, cal: Calibration) -> Calibration | None:
    """The index's calibration if it is still ``cal`` (none published since), else None."""
    current = from_index_meta(version_state(backend, index).xlidx_meta)
    return current if current is not None and current.made_at == cal.made_at else None


def prune_retired_means(
    backend: Backend, index: str, cal: Calibration, *, now: float | None = None
) -> int:
    """Drop the means retired more than :data:`RETIRED_FOR` seconds ago that no passage
    carries, unless a newer calibration was published meanwhile; how many were dropped."""
    current = still_current(backend, index, cal)
    if current is None:
        return 0
    at = now if now is not None else time.time()
    old = {k for k, when in current.retired.items() if at - _seconds(when) > RETIRED_FOR}
    drop = old - backend.means_carried(index, old)
    if drop:
        fresh = version_state(backend, index)
        if still_current(backend, index, cal) is not None:
            meta = {**fresh.xlidx_meta, "calibration": current.without(drop).to_meta()}
            update_meta(backend, fresh, meta)
    return len(drop)


def _seconds(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0  # unreadable: old enough


def _updates(
    backend: Backend, hits: Iterable[RawHit], cal: Calibration, lost: list[str]
) -> Iterator[dict[str, Any]]:
    for h in hits:
        try:
            moved = cal.recenter(h.xlidx.get("passages") or [])
        except MappingError:
            lost.append(h.id)  # a mean it carries is gone: leave it as it is
            continue
        if moved is None:
            continue
        yield backend.passages_update(h, moved)


def rewrite_writer(backend: Backend) -> BulkWriter:
    """The writer of moved passages: one request per :data:`REWRITE_BATCH` documents;
    documents refused with 429 retried 3 times by the bulk helper (1 s to 10 s apart), a
    request that fails as a whole with a transient error 3 times."""
    return BulkWriter(
        backend,
        max_docs=REWRITE_BATCH,
        concurrency=1,
        patience=Patience(attempts=3, initial=1.0, max_wait=10.0),
        item_retries=3,
    )


def rewrite(
    backend: Backend,
    index: str,
    cal: Calibration,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    rounds: int = 5,
    writer: BulkWriter | None = None,
) -> tuple[int, int, int]:
    """Move every stale document's passages to ``cal``; ``(rewritten, conflicts, lost)``
    (lost: documents carrying a mean ``cal`` does not have, left as they are).

    Rounds repeat (after a refresh) while documents written with an older calibration keep
    arriving, e.g. from workers that read ``_meta`` just before it changed; they stop when a
    newer calibration was published (its own run moves the vectors). ``writer``: default
    :func:`rewrite_writer`.
    """
    writer = writer or rewrite_writer(backend)
    rewritten = conflicts = 0
    lost: list[str] = []
    for _ in range(rounds):
        backend.refresh(index)
        total = backend.count_stale(index, cal) - len(set(lost))
        if total <= 0 or still_current(backend, index, cal) is None:
            break
        before = rewritten + conflicts
        hits = backend.stale_documents(index, cal, size=REWRITE_BATCH)
        updates = _updates(backend, hits, cal, lost)
        done = 0
        while chunk := list(islice(updates, REWRITE_BATCH)):
            result = writer.write_actions(chunk)
            rewritten += result.indexed
            for failure in result.failed:
                if failure.status == 409:
                    conflicts += 1
                elif failure.status != 404:  # a document deleted meanwhile needs nothing
                    raise BackendError(
                        f"could not move the vectors of document {failure.id!r}: {failure.error}",
                        status=failure.status or None,
                    )
            done += len(chunk)
            if progress is not None:
                progress("moving vectors", done, total)
        if rewritten + conflicts == before:
            break  # nothing moved this round: what is left cannot be (lost means)
    return rewritten, conflicts, len(set(lost))


def due(backend: Backend, state: IndexState) -> bool:
    """Whether :func:`calibrate` with ``full=False`` has something to do (cheap: one count)."""
    cal = from_index_meta(state.xlidx_meta)
    min_docs = cal.min_docs if cal else MIN_DOCS
    return bool(languages_due(cal, backend.language_counts(state.index), min_docs))


class IndexModel:
    """The index's own model for the query-side means, loaded on first use (a model that
    encodes queries and documents alike never needs it); ``embedder``: one already loaded."""

    def __init__(self, state: IndexState, *, device: str = "auto", embedder: Any = None) -> None:
        self.state = state
        self.device = device
        self._embedder = embedder

    def encode_query(self, texts: Sequence[str]) -> Any:
        if self._embedder is None:
            from xlidx.pipeline.embed import load_embedder

            emb = self.state.xlidx_meta.get("embedding") or {}
            self._embedder = load_embedder(
                str(emb.get("source") or emb.get("model")), device=self.device
            )
        from xlidx.spec import check_model

        check_model(self.state.meta, self._embedder.describe(), self.state.index)
        return self._embedder.encode_query(texts)


class AutoCalibration:
    """Calibration while ingesting: the calibration new passages are written with (read
    again from ``_meta`` every :data:`REREAD_EVERY` seconds, as the queue workers do), and a
    calibration (:func:`calibrate` with ``full=False``) as soon as a language has
    ``min_docs`` documents and no means yet, which also moves the vectors written before.

    A calibration that fails does not stop the ingest: ``error`` says why (its vectors stay
    as they were written, and ``xlidx index calibrate`` tries again).
    """

    def __init__(
        self,
        backend: Backend,
        state: IndexState,
        encoder: QuerySideEncoder | None,
        *,
        run: Callable[[str, Callable[[], Any]], Any] = lambda _what, fn: fn(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.index = state.index
        self.encoder = encoder
        self._current = from_index_meta(state.xlidx_meta)
        self._clock = clock
        self._read_at = clock()
        self.min_docs = self._current.min_docs if self._current else MIN_DOCS
        self._run = run  # how a cluster call is made (e.g. under a Patience)
        self.counts: Counter[str] = Counter(
            run("count documents per language", lambda: backend.language_counts(self.index))
        )
        self.made: list[Calibrated] = []
        self.error: str | None = None
        self._tried: set[str] = set()  # calibrated and still without means: not again

    @property
    def current(self) -> Calibration | None:
        if self._clock() - self._read_at > REREAD_EVERY:
            meta = self._run(
                "read the index's _meta", lambda: version_state(self.backend, self.index).xlidx_meta
            )
            self._current = from_index_meta(meta)
            self._read_at = self._clock()
        return self._current

    def due(self) -> list[str]:
        return [
            lang
            for lang in languages_due(self.current, self.counts, self.min_docs)
            if lang not in self._tried
        ]

    def calibrate(self) -> Calibrated | None:
        """Calibrate what is due now (after a refresh, so that the last writes count)."""
        due = self.due()
        if not due:
            return None

        def go() -> Calibrated | None:
            self.backend.refresh(self.index)
            return calibrate(
                self.backend, version_state(self.backend, self.index),
                encoder=self.encoder, full=False,
            )  # fmt: skip

        try:
            done: Calibrated | None = self._run("calibrate the vectors", go)
            self.counts = Counter(
                self._run(
                    "count documents per language",
                    lambda: self.backend.language_counts(self.index),
                )
            )
        except XlidxError as exc:
            self.error = str(exc)
            self._tried |= set(due)
            return None
        if done is not None:
            self._current, self._read_at = done.calibration, self._clock()
            self.made.append(done)
        self._tried |= set(self.due()) & set(due)  # due still, after the recount: not again
        return done
