"""Calibrate an index version: estimate the per-language means from its own documents, decide
whether to center, record it in ``_meta``, and move the stored passage vectors to it.

The means come from a random sample of up to ``sample_docs`` documents per language (their
passage vectors, un-centered where a former calibration centered them). The query-side mean
of a language is the mean of the first sentences of those documents encoded as queries; a
model that encodes queries and documents alike (no prompts) uses the document mean for both.

Moving the vectors reads every document whose passages are not at the calibration's means
(one nested query), recomputes them from what each passage stores (:mod:`.calibration`) and
writes them back with partial updates conditional on the document's sequence number, so a
document re-ingested meanwhile is left alone (it was written with the new calibration).
Means that passages still carry stay in ``_meta`` until no passage carries them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np

from xlidx.backends.base import Backend
from xlidx.documents import UNDETERMINED
from xlidx.errors import BackendError, MappingError
from xlidx.indices.calibration import (
    MIN_DOCS,
    SAMPLE_DOCS,
    Calibration,
    LanguageMeans,
    average,
    decide,
    from_index_meta,
    language_component,
    mean_id,
)
from xlidx.indices.manage import IndexState, update_meta, version_state

FIELDS = {"center": {"type": "keyword"}, "norm": {"type": "float", "index": False}}
FIRST_SENTENCE_CHARS = 300
_SEED = 20240611  # the sample is random, and the same on every run


class QueryEncoder(Protocol):
    def encode_query(self, texts: Sequence[str]) -> Any: ...


@dataclass
class Calibrated:
    """What :func:`calibrate` did."""

    calibration: Calibration
    added: list[str] = field(default_factory=list)  # languages given means of their own
    rewritten: int = 0  # documents whose passages were moved
    conflicts: int = 0  # documents changed meanwhile (already written with the calibration)
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
            "seconds": round(self.seconds, 2),
        }


def document_counts(backend: Backend, index: str) -> dict[str, int]:
    """Documents per language (``xlidx.lang``), ``und`` included."""
    res = backend.search(
        index,
        {"size": 0, "aggs": {"langs": {"terms": {"field": "xlidx.lang", "size": 500}}}},
        "count documents per language",
    )
    buckets = res.get("aggregations", {}).get("langs", {}).get("buckets", [])
    return {str(b["key"]): int(b["doc_count"]) for b in buckets}


def languages_due(cal: Calibration | None, counts: Mapping[str, int], min_docs: int) -> list[str]:
    """Languages with enough documents and no means of their own yet."""
    have = set(cal.languages) if cal is not None else set()
    return sorted(
        lang
        for lang, n in counts.items()
        if lang != UNDETERMINED and n >= min_docs and lang not in have
    )


def first_sentence(source: Mapping[str, Any], text_fields: Sequence[str]) -> str | None:
    from xlidx.pipeline.sentences import split_sentences

    for f in text_fields:
        value = source.get(f)
        if isinstance(value, str) and value.strip():
            sentences = split_sentences(value, max_chars=FIRST_SENTENCE_CHARS)
            return sentences[0] if sentences else None
    return None


@dataclass
class Sample:
    vectors: list[np.ndarray]  # raw passage vectors in the language
    sentences: list[str]  # first sentences of the documents
    docs: int


def sample(
    backend: Backend,
    index: str,
    lang: str,
    size: int,
    text_fields: Sequence[str],
    cal: Calibration | None,
) -> Sample:
    """Up to ``size`` random documents in ``lang``: their raw passage vectors in ``lang``."""
    body = {
        "size": size,
        "_source": ["xlidx.passages", *text_fields],
        "query": {
            "function_score": {
                "query": {"term": {"xlidx.lang": lang}},
                "random_score": {"seed": _SEED, "field": "_seq_no"},
                "boost_mode": "replace",
            }
        },
    }
    hits = backend.search(index, body, f"sample the {lang} documents")["hits"]["hits"]
    out = Sample([], [], 0)
    for h in hits:
        src = h.get("_source") or {}
        passages = (src.get("xlidx") or {}).get("passages") or []
        vecs = [p for p in passages if p.get("lang", lang) == lang and p.get("vector")]
        if not vecs:
            continue
        out.docs += 1
        out.vectors += [raw_vector(p, cal) for p in vecs]
        sentence = first_sentence(src, text_fields)
        if sentence:
            out.sentences.append(sentence)
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
    encoder: QueryEncoder | None = None,
    mode: str | None = None,
    full: bool = True,
    min_docs: int | None = None,
    sample_docs: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    now: datetime | None = None,
) -> Calibrated | None:
    """Calibrate ``state``'s index version and move its vectors; ``None`` when there is
    nothing to do (``full=False``: no language is due, and the mode is unchanged).

    ``full`` re-estimates every language's means; otherwise the languages that already have
    means keep them (their vectors are not rewritten unless the decision changes) and only the
    languages now due get theirs. ``encoder`` encodes the first sentences for the query-side
    means of a model with prompts (it is needed only then).
    """
    t0 = time.monotonic()
    index = state.index
    x = state.xlidx_meta
    old = from_index_meta(x)
    mode = mode or (old.mode if old else "auto")
    min_docs = min_docs or (old.min_docs if old else MIN_DOCS)
    sample_docs = sample_docs or (old.sample_docs if old else SAMPLE_DOCS)
    counts = document_counts(backend, index)
    due = languages_due(None if full else old, counts, min_docs)
    if not full and not due and old is not None and old.mode == mode:
        return None
    if not full and not due and old is None:
        return None
    keep = {} if full or old is None else dict(old.languages)
    langs = sorted({*keep, *due})
    embedding = x.get("embedding") or {}
    text_fields = list(x.get("text_fields") or ["text"])
    means: dict[str, list[float]] = dict(old.means) if old else {}
    samples: dict[str, np.ndarray] = {}
    languages: dict[str, LanguageMeans] = {}
    for i, lang in enumerate(langs):
        if progress is not None:
            progress(f"sampling {lang}", i, len(langs))
        s = sample(backend, index, lang, sample_docs, text_fields, old)
        if s.vectors:
            samples[lang] = np.stack(s.vectors)
        if lang in keep:
            languages[lang] = keep[lang]
            continue
        if s.docs < min_docs:
            continue  # fewer readable documents than counted: not this time
        doc_mean = average(s.vectors)
        doc_id = mean_id(doc_mean)
        means[doc_id] = doc_mean
        if symmetric(embedding) or not s.sentences:
            languages[lang] = LanguageMeans(doc_id, doc_id, s.docs, 0)
            continue
        if encoder is None:
            raise MappingError(
                "calibrating this index needs its model (its queries have a prompt of their "
                "own): load it, or pass it with --model"
            )
        q_mean = average(np.asarray(encoder.encode_query(s.sentences), dtype=np.float64))
        q_id = mean_id(q_mean)
        means[q_id] = q_mean
        languages[lang] = LanguageMeans(doc_id, q_id, s.docs, len(s.sentences))
    component = language_component(samples)
    centering, reason = decide(component, mode)
    fallback = None
    if languages:
        fb_doc = average([means[m.document] for m in languages.values()])
        fb_query = average([means[m.query] for m in languages.values()])
        fallback = (mean_id(fb_doc), mean_id(fb_query))
        means[fallback[0]], means[fallback[1]] = fb_doc, fb_query
    cal = Calibration(
        model=str(embedding.get("model", "")),
        mode=mode,
        centering=centering,
        reason=reason,
        made_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        languages=languages,
        fallback=fallback,
        means=means,
        component=component,
        min_docs=min_docs,
        sample_docs=sample_docs,
    )
    done = Calibrated(cal, added=[lang for lang in languages if lang not in keep])
    publish(backend, state, cal)
    done.rewritten, done.conflicts = rewrite(backend, index, cal, progress=progress)
    carried = carried_means(backend, index, set(cal.means) - cal.in_use())
    if carried != set(cal.means) - cal.in_use():
        publish(backend, state, cal.pruned(carried))
    done.seconds = time.monotonic() - t0
    return done


def publish(backend: Backend, state: IndexState, cal: Calibration) -> None:
    """Write ``cal`` into the version's ``_meta`` (read fresh: other keys may have moved)."""
    backend.add_fields(state.index, {"xlidx": {"properties": {"passages": {
        "type": "nested", "properties": FIELDS}}}})  # fmt: skip
    fresh = version_state(backend, state.index)
    update_meta(backend, fresh, {**fresh.xlidx_meta, "calibration": cal.to_meta()})


def stale_query(cal: Calibration | None) -> dict[str, Any]:
    """Documents with a passage not at ``cal``'s means (any centered one, without ``cal``)."""
    if cal is None or not cal.centering:
        inner: dict[str, Any] = {"exists": {"field": "xlidx.passages.center"}}
    else:
        should: list[dict[str, Any]] = []
        for lang, m in sorted(cal.languages.items()):
            should.append({"bool": {
                "filter": [{"term": {"xlidx.passages.lang": lang}}],
                "must_not": [{"term": {"xlidx.passages.center": m.document}}],
            }})  # fmt: skip
        if cal.fallback:
            should.append({"bool": {"must_not": [
                {"terms": {"xlidx.passages.lang": sorted(cal.languages)}},
                {"term": {"xlidx.passages.center": cal.fallback[0]}},
            ]}})  # fmt: skip
        inner = {"bool": {"should": should, "minimum_should_match": 1}}
    return {"nested": {"path": "xlidx.passages", "query": inner}}


def _updates(
    hits: Iterator[dict[str, Any]], index: str, cal: Calibration
) -> Iterator[dict[str, Any]]:
    for h in hits:
        passages = ((h.get("_source") or {}).get("xlidx") or {}).get("passages") or []
        moved = cal.recenter(passages)
        if moved is None:
            continue
        yield {
            "_op_type": "update",
            "_index": h.get("_index", index),
            "_id": h["_id"],
            "if_seq_no": h["_seq_no"],
            "if_primary_term": h["_primary_term"],
            "doc": {"xlidx": {"passages": moved}},
        }


def rewrite(
    backend: Backend,
    index: str,
    cal: Calibration,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    rounds: int = 5,
) -> tuple[int, int]:
    """Move every stale document's passages to ``cal``; ``(rewritten, conflicts)``.

    Rounds repeat (after a refresh) while documents written with an older calibration keep
    arriving, e.g. from workers that read ``_meta`` just before it changed.
    """
    rewritten = conflicts = 0
    for _ in range(rounds):
        backend.refresh(index)
        total = backend.count(index, stale_query(cal))
        if not total:
            break
        hits = backend.scan(
            index, stale_query(cal), size=200, source=["xlidx.passages"], versions=True
        )
        results = backend.bulk(
            _updates(hits, index, cal),
            chunk_size=200,
            max_chunk_bytes=10 * 1024 * 1024,
            max_retries=3,
            initial_backoff=1.0,
            max_backoff=10.0,
        )
        for done, (ok, item) in enumerate(results, start=1):
            info = item.get("update", {})
            if ok:
                rewritten += 1
            elif info.get("status") == 409:
                conflicts += 1
            elif info.get("status") != 404:  # a document deleted meanwhile needs nothing
                raise BackendError(
                    f"could not move the vectors of document {info.get('_id')!r}: "
                    f"{info.get('error')}",
                    status=int(info.get("status") or 0) or None,
                )
            if progress is not None:
                progress("moving vectors", done, total)
    return rewritten, conflicts


def carried_means(backend: Backend, index: str, ids: set[str]) -> set[str]:
    """Of ``ids``, the means some passage still carries."""
    carried: set[str] = set()
    for mean in sorted(ids):
        query = {"nested": {"path": "xlidx.passages",
                            "query": {"term": {"xlidx.passages.center": mean}}}}  # fmt: skip
        if backend.count(index, query):
            carried.add(mean)
    return carried


def due(backend: Backend, state: IndexState) -> bool:
    """Whether :func:`calibrate` with ``full=False`` has something to do (cheap: one count)."""
    cal = from_index_meta(state.xlidx_meta)
    min_docs = cal.min_docs if cal else MIN_DOCS
    return bool(languages_due(cal, document_counts(backend, state.index), min_docs))


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
        from xlidx.indices.spec import check_model

        check_model(self.state.meta, self._embedder.describe(), self.state.index)
        return self._embedder.encode_query(texts)


class AutoCalibration:
    """Calibration while ingesting: the calibration new passages are written with, and a
    calibration (:func:`calibrate` with ``full=False``) as soon as a language has
    ``min_docs`` documents and no means yet, which also moves the vectors written before."""

    def __init__(
        self,
        backend: Backend,
        state: IndexState,
        encoder: QueryEncoder | None,
        *,
        run: Callable[[str, Callable[[], Any]], Any] = lambda _what, fn: fn(),
    ) -> None:
        self.backend = backend
        self.index = state.index
        self.encoder = encoder
        self.current = from_index_meta(state.xlidx_meta)
        self.min_docs = self.current.min_docs if self.current else MIN_DOCS
        self._run = run  # how a cluster call is made (e.g. under a Patience)
        self.counts: Counter[str] = Counter(
            run("count documents per language", lambda: document_counts(backend, self.index))
        )
        self.made: list[Calibrated] = []
        self._tried: set[str] = set()  # due, calibrated, and still without means: not again

    def due(self) -> list[str]:
        return [
            lang
            for lang in languages_due(self.current, self.counts, self.min_docs)
            if lang not in self._tried
        ]

    def written(self, langs: Iterable[str]) -> Calibrated | None:
        """Count documents just written; calibrate when a language became due."""
        self.counts.update(langs)
        return self.calibrate() if self.due() else None

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

        done: Calibrated | None = self._run("calibrate the vectors", go)
        if done is not None:
            self.current = done.calibration
            self.made.append(done)
        self.counts = Counter(
            self._run(
                "count documents per language", lambda: document_counts(self.backend, self.index)
            )
        )
        self._tried |= {lang for lang in due if self.current and lang not in self.current.languages}
        return done
