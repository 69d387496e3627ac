"""Per-language mean centering of an index's vectors (pure functions over data).

Every multilingual encoder puts a language component into its vectors: two sentences in the
same language sit closer than their meaning says, so in a mixed-language index a query's own
language wins. Centering removes that component without training: each passage vector has
the mean vector of its language subtracted and is renormalized; each query vector has the
mean *query-side* vector of the query's language subtracted (for a model with prompts, the
first sentences of the index's documents in that language, encoded as queries).

The means live in the index's ``_meta.xlidx.calibration`` (see :class:`Calibration`). A
passage written centered carries ``center`` (the id of the mean subtracted) and ``norm``
(the length of the difference before renormalizing), so the raw vector is
``vector * norm + mean``: centering is undone or redone with other means without
re-embedding. A passage without ``center`` holds the model's raw vector.

Centering is decided per index from its own data (:func:`language_component`): it is turned
on only where the language means explain at least :data:`STRONG_SHARE` of the document
vectors' variance, measured with the sample size accounted for. A language with fewer than
``min_docs`` documents, and ``und``, use the fallback means: the average of the calibrated
languages' means (so every vector loses the component all languages share).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xlidx.errors import ConfigError, MappingError

MIN_DOCS = 50  # documents of a language before it gets means of its own
SAMPLE_DOCS = 1000  # documents per language read to estimate its means
STRONG_SHARE = 0.05  # centering turns on from this adjusted share of variance (auto)
MODES = ("auto", "on", "off")
SAME_MEAN = 1e-4  # a re-estimated mean this close (relative) to the old one keeps the old one
DOCUMENT, QUERY = "document", "query"
_DIGITS = 7  # significant digits kept of a stored mean


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"unknown centering {mode!r}: expected {', '.join(MODES)}")
    return mode


def mean_id(vector: Sequence[float]) -> str:
    """A short content id of a mean (what a centered passage records)."""
    data = np.asarray(vector, dtype=np.float32).tobytes()
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def rounded(vector: Any) -> list[float]:
    return [float(f"{float(x):.{_DIGITS}g}") for x in vector]


def center(vector: Any, mean: Any) -> tuple[list[float], float]:
    """``(unit(vector - mean), |vector - mean|)``."""
    diff = np.asarray(vector, dtype=np.float64) - np.asarray(mean, dtype=np.float64)
    norm = float(np.linalg.norm(diff))
    if norm < 1e-12:  # a vector equal to its language's mean: stored as it is, norm 0
        return [float(x) for x in vector], 0.0
    return [float(x) for x in (diff / norm).astype(np.float32)], norm


def restore(vector: Any, norm: float, mean: Any) -> np.ndarray:
    """The raw vector of a centered one."""
    v = np.asarray(vector, dtype=np.float64)
    if norm == 0.0:
        return v
    return v * norm + np.asarray(mean, dtype=np.float64)


@dataclass(frozen=True)
class Component:
    """How strongly the vectors carry their language, measured on a sample.

    ``share``: the part of the vectors' variance that the language means explain (between-
    language sum of squares over the total). ``adjusted``: the same with the share that means
    of random groups of these sizes would explain taken off (omega squared), so small samples
    in many dimensions do not look like a language component. ``accuracy``: how often the
    nearest language mean (a document's own left out of its mean) names its language.
    """

    share: float
    adjusted: float
    accuracy: float
    languages: int
    vectors: int

    def to_meta(self) -> dict[str, Any]:
        return {
            "share": round(self.share, 4),
            "adjusted_share": round(self.adjusted, 4),
            "accuracy": round(self.accuracy, 4),
            "languages": self.languages,
            "vectors": self.vectors,
        }


def language_component(samples: Mapping[str, Any]) -> Component:
    """Measure the language component of ``{lang: vectors (n by d)}`` (two languages or more
    with two vectors or more each; fewer measure as no component)."""
    groups = {k: np.asarray(v, dtype=np.float64) for k, v in samples.items() if len(v) >= 2}
    n = sum(len(g) for g in groups.values())
    k = len(groups)
    if k < 2:
        return Component(0.0, 0.0, 0.0, k, n)
    allv = np.concatenate(list(groups.values()))
    grand = allv.mean(axis=0)
    total = float(((allv - grand) ** 2).sum())
    means = {lang: g.mean(axis=0) for lang, g in groups.items()}
    between = sum(len(g) * float(((means[lang] - grand) ** 2).sum()) for lang, g in groups.items())
    within = total - between
    msw = within / max(1, n - k)
    share = between / total if total > 0 else 0.0
    adjusted = max(0.0, (between - (k - 1) * msw) / (total + msw)) if total > 0 else 0.0
    langs = list(groups)
    centroids = np.stack([means[lang] for lang in langs])
    correct = 0
    for j, lang in enumerate(langs):
        g = groups[lang]
        dist = ((g[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        own = (len(g) * means[lang] - g) / (len(g) - 1)  # leave-one-out own mean
        dist[:, j] = ((g - own) ** 2).sum(axis=1)
        correct += int((dist.argmin(axis=1) == j).sum())
    return Component(share, adjusted, correct / n, k, n)


def decide(component: Component, mode: str) -> tuple[bool, str]:
    """Whether to center, and why (one line)."""
    check_mode(mode)
    strength = (
        f"the language means explain {component.adjusted:.1%} of the vectors' variance "
        f"(adjusted; nearest mean names the language {component.accuracy:.0%} of the time)"
    )
    if mode == "off":
        return False, "turned off for this index"
    if component.languages < 2:
        why = "fewer than two languages have enough documents to measure a language component"
        return (mode == "on"), (f"turned on for this index; {why}" if mode == "on" else why)
    if mode == "on":
        return True, f"turned on for this index; {strength}"
    strong = component.adjusted >= STRONG_SHARE
    verdict = "at least" if strong else "below"
    return strong, f"{strength}: {verdict} the {STRONG_SHARE:.0%} that turns centering on"


@dataclass(frozen=True)
class LanguageMeans:
    document: str  # mean ids
    query: str
    docs: int  # documents sampled for the means
    queries: int  # first sentences encoded for the query-side mean (0: the document mean)

    def to_meta(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "query": self.query,
            "docs": self.docs,
            "queries": self.queries,
        }


@dataclass(frozen=True)
class Calibration:
    """An index version's calibration, as ``_meta.xlidx.calibration`` holds it.

    ``means`` maps a mean's id to its vector; ``retired`` holds when each mean no longer
    in use was replaced: a retired mean stays while any passage may carry it (writers cache a
    calibration for a few seconds), and is pruned once old and carried by none.
    """

    model: str
    mode: str
    centering: bool
    reason: str
    made_at: str
    languages: dict[str, LanguageMeans]
    fallback: tuple[str, str] | None  # (document id, query id)
    means: dict[str, list[float]]
    component: Component
    min_docs: int = MIN_DOCS
    sample_docs: int = SAMPLE_DOCS
    retired: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the calibration found wrong with its own samples

    @property
    def centers(self) -> bool:
        """Whether vectors are centered at all (on, with means to center with)."""
        return self.centering and bool(self.languages)

    # -- targets -------------------------------------------------------------------------------
    def document_mean(self, lang: str) -> str | None:
        """The id of the mean a passage in ``lang`` should have subtracted (None: raw)."""
        if not self.centers:
            return None
        if lang in self.languages:
            return self.languages[lang].document
        return self.fallback[0] if self.fallback else None

    def query_mean(self, lang: str | None) -> str | None:
        if not self.centers:
            return None
        if lang is not None and lang in self.languages:
            return self.languages[lang].query
        return self.fallback[1] if self.fallback else None

    def nearest_language(self, vector: Sequence[float]) -> str | None:
        """The language whose query-side mean is nearest to a raw query vector."""
        if not self.languages:
            return None
        langs = sorted(self.languages)
        means = np.asarray([self.vector(self.languages[k].query) for k in langs])
        dist = ((means - np.asarray(vector, dtype=np.float64)) ** 2).sum(axis=1)
        return langs[int(dist.argmin())]

    def vector(self, mean: str) -> list[float]:
        try:
            return self.means[mean]
        except KeyError:
            raise MappingError(
                f"a passage carries mean {mean!r}, which the index's calibration has lost: "
                "re-embed its documents (`xlidx index migrate NAME --model …`)"
            ) from None

    # -- applying it ---------------------------------------------------------------------------
    def center_query(self, vector: Sequence[float], lang: str | None) -> list[float]:
        target = self.query_mean(lang)
        if target is None:
            return [float(x) for x in vector]
        return center(vector, self.vector(target))[0]

    def passages(
        self, vectors: Sequence[Sequence[float]], langs: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The passage objects of freshly embedded ``vectors`` (raw, one language each)."""
        out: list[dict[str, Any]] = []
        for n, (v, lang) in enumerate(zip(vectors, langs, strict=True)):
            out.append(self._place({"n": n, "lang": lang}, np.asarray(v, dtype=np.float64)))
        return out

    def recenter(self, passages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
        """Stored passages moved to this calibration's targets; ``None`` if all are there."""
        if all(p.get("center") == self.document_mean(str(p.get("lang"))) for p in passages):
            return None
        out: list[dict[str, Any]] = []
        for p in passages:
            raw = self.raw(p)
            rest = {k: v for k, v in p.items() if k not in ("vector", "center", "norm")}
            out.append(self._place(rest, raw))
        return out

    def raw(self, passage: Mapping[str, Any]) -> np.ndarray:
        vec = passage["vector"]
        mean = passage.get("center")
        if mean is None:
            return np.asarray(vec, dtype=np.float64)
        return restore(vec, float(passage.get("norm", 1.0)), self.vector(str(mean)))

    def _place(self, rest: dict[str, Any], raw: np.ndarray) -> dict[str, Any]:
        target = self.document_mean(str(rest.get("lang")))
        if target is None:
            return {**rest, "vector": [float(x) for x in raw.astype(np.float32)]}
        vec, norm = center(raw, self.vector(target))
        return {**rest, "vector": vec, "center": target, "norm": norm}

    # -- stored form ---------------------------------------------------------------------------
    def in_use(self) -> set[str]:
        ids = {m.document for m in self.languages.values()}
        ids |= {m.query for m in self.languages.values()}
        if self.fallback:
            ids |= set(self.fallback)
        return ids

    def retiring(self, now: str) -> Calibration:
        """This calibration with every mean it does not use marked retired (since ``now``,
        unless retired before)."""
        unused = set(self.means) - self.in_use()
        retired = {k: self.retired.get(k, now) for k in sorted(unused)}
        return replace(self, retired=retired)

    def without(self, ids: set[str]) -> Calibration:
        means = {k: v for k, v in self.means.items() if k not in ids}
        retired = {k: v for k, v in self.retired.items() if k not in ids}
        return replace(self, means=means, retired=retired)

    def merged(self, other: Calibration) -> Calibration:
        """This calibration keeping the means ``other`` (one published meanwhile) knows."""
        means = {**other.means, **self.means}
        return replace(self, means=means).retiring(self.made_at)

    def to_meta(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "mode": self.mode,
            "centering": self.centering,
            "reason": self.reason,
            "made_at": self.made_at,
            "min_docs": self.min_docs,
            "sample_docs": self.sample_docs,
            "component": self.component.to_meta(),
            "languages": {k: v.to_meta() for k, v in sorted(self.languages.items())},
            "fallback": (
                {"document": self.fallback[0], "query": self.fallback[1]} if self.fallback else None
            ),
            "means": dict(self.means),
            "retired": dict(self.retired),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Calibration:
        try:
            comp = meta.get("component") or {}
            fb = meta.get("fallback")
            return cls(
                model=str(meta.get("model", "")),
                mode=check_mode(str(meta.get("mode", "auto"))),
                centering=bool(meta.get("centering", False)),
                reason=str(meta.get("reason", "")),
                made_at=str(meta.get("made_at", "")),
                languages={
                    str(k): LanguageMeans(
                        str(v["document"]), str(v["query"]), int(v["docs"]), int(v["queries"])
                    )
                    for k, v in (meta.get("languages") or {}).items()
                },
                fallback=(str(fb["document"]), str(fb["query"])) if fb else None,
                means={str(k): [float(x) for x in v] for k, v in (meta.get("means") or {}).items()},
                component=Component(
                    float(comp.get("share", 0.0)),
                    float(comp.get("adjusted_share", 0.0)),
                    float(comp.get("accuracy", 0.0)),
                    int(comp.get("languages", 0)),
                    int(comp.get("vectors", 0)),
                ),
                min_docs=int(meta.get("min_docs", MIN_DOCS)),
                sample_docs=int(meta.get("sample_docs", SAMPLE_DOCS)),
                retired={str(k): str(v) for k, v in (meta.get("retired") or {}).items()},
                warnings=tuple(str(w) for w in meta.get("warnings") or ()),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise MappingError(f"the index's calibration in _meta is malformed: {exc}") from None


def from_index_meta(xlidx_meta: Mapping[str, Any]) -> Calibration | None:
    raw = xlidx_meta.get("calibration")
    return Calibration.from_meta(raw) if isinstance(raw, Mapping) else None


SAME_QUERY_SIDE = 0.999  # cosine above which two languages' query-side means are one


def alike(
    vectors: Mapping[str, Sequence[float]], above: float = SAME_QUERY_SIDE
) -> list[tuple[str, str, float]]:
    """The pairs of ``vectors`` (by name) whose cosine passes ``above``, with it (pure)."""
    names = sorted(vectors)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            va, vb = np.asarray(vectors[a], np.float64), np.asarray(vectors[b], np.float64)
            norms = float(np.linalg.norm(va) * np.linalg.norm(vb))
            cos = float(va @ vb) / max(norms, 1e-12)
            if cos > above:
                out.append((a, b, cos))
    return out


def close(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether mean ``a`` is the same as ``b`` up to :data:`SAME_MEAN` (relative)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(float(np.linalg.norm(x - y)) <= SAME_MEAN * max(float(np.linalg.norm(y)), 1e-12))


def average(vectors: Any) -> list[float]:
    """The mean of a list of vectors (rounded as ``_meta`` stores it)."""
    return rounded(np.mean(np.asarray(vectors, dtype=np.float64), axis=0))
