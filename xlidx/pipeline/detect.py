"""Language detection with lingua over every language it knows: documents, passages, queries.

Languages
    :data:`ALL_LANGUAGES` holds the ISO 639-1 code of each of lingua's 75 languages.
    :data:`DEFAULT_LANGUAGES` is ``()``, and ``()`` means *all of them* wherever a language set
    is taken (``Detector(())``, :func:`parse_languages`). A non-empty set restricts detection
    to those languages, for users who know their corpus.

Evidence
    Only the words of a text count. URLs, e-mail addresses, code identifiers (``snake_case``,
    ``camelCase``, ``obj.attr``, anything holding ``_ / \\ = < > { } [ ] | # @``), numbers,
    punctuation and emoji are dropped first. Text whose words hold fewer than three letters
    (a CJK character or a Hangul syllable counts as three) is ``und`` (undetermined).

Rule (documents, :meth:`Detector.detect_many`)
    lingua scores the words of the first 2,000 characters as one text. Where it is
    near-certain (top confidence >= 0.99) and the text holds 50 letters or more, that is the
    answer. Otherwise every word votes: lingua's confidence values for the word alone,
    floored at 1e-4, are multiplied over the words (summed as logs) and normalised; the
    best language's share is the confidence. One word then weighs at most a factor 10^4, so
    a name or a loanword cannot outvote the rest, which whole-text scoring lets it do. On the
    fixture texts (23 languages, benchmarks/bench_detect.py) whole-text lingua over all
    languages gets 455/460 paragraphs and 265/276 questions; with the vote 458/460 (left:
    2 id->ms) and 272/276 (left: 2 id->ms, en->eo, ru->bg). The floor's value (1e-2 to 1e-6)
    changes none of these. Short text always votes: lingua's rules misfire there
    ("найкращий рецепт хліба" is Kazakh to it, at confidence 1.0).

    A confidence below ``min_confidence`` gives ``und``; ``DEFAULT_MIN_CONFIDENCE = 0.3``.
    Over 75 languages lingua's confidence on short text is low: at the old 0.5, 47 of the
    276 questions came out ``und`` and only 5 of 11 errors went. The vote's confidence is
    at least 0.35 for every right answer on the questions (and 0.68 on paragraphs), while
    bare names and code-like snippets stay under 0.3 ("Paris" 0.06, "iPhone 15 Pro Max 256GB" 0.18,
    "New York" 0.24); so 0.3 keeps every right answer and drops those.

A record that declares its own ``lang`` is not detected at all (:func:`detect_stage`).
lingua's detector for a language set is built once per process and shared by every
:class:`Detector` over that set (lingua itself shares the loaded models between detectors).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from xlidx.documents import UNDETERMINED, Prepared, is_lang_code
from xlidx.errors import ConfigError
from xlidx.pipeline.langwords import evidence, han_language, han_only, text_words

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Every language lingua 2.x knows, by ISO 639-1 code (tests check this against lingua).
ALL_LANGUAGES: tuple[str, ...] = (
    *("af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en"),
    *("eo", "es", "et", "eu", "fa", "fi", "fr", "ga", "gu", "he", "hi", "hr", "hu", "hy"),
    *("id", "is", "it", "ja", "ka", "kk", "ko", "la", "lg", "lt", "lv", "mi", "mk", "mn"),
    *("mr", "ms", "nb", "nl", "nn", "pa", "pl", "pt", "ro", "ru", "sk", "sl", "sn", "so"),
    *("sq", "sr", "st", "sv", "sw", "ta", "te", "th", "tl", "tn", "tr", "ts", "uk", "ur"),
    *("vi", "xh", "yo", "zh", "zu"),
)
#: ``()``: detect among every language of :data:`ALL_LANGUAGES`.
DEFAULT_LANGUAGES: tuple[str, ...] = ()
#: The ten languages detection was restricted to by default before issue 13 (for comparison).
LEGACY_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "it", "pt", "nl", "ru", "zh", "ja")
DEFAULT_MIN_CONFIDENCE = 0.3
DEFAULT_QUERY_MIN_CONFIDENCE = 0.3
_SAMPLE_CHARS = 2000  # detecting on the first 2,000 characters is as good and much faster
_MIN_LETTERS = 3  # fewer letters than this in the words of a text: und
_VOTE_GATE = 0.99  # lingua's whole-text confidence at which the word vote is skipped
_WORD_FLOOR = 1e-4  # the least confidence one word can give a language in the vote


def parse_languages(codes: Sequence[str]) -> tuple[str, ...]:
    """Validate ISO 639-1 codes against lingua's languages; ``()`` (or ``all``) means all."""
    out: list[str] = []
    for raw in codes:
        code = raw.strip().lower()
        if code in ("all", "*"):
            return ()
        if not code:
            continue
        if not is_lang_code(code) or code not in ALL_LANGUAGES:
            raise ConfigError(
                f"unknown language code {raw!r}: use ISO 639-1 codes that lingua knows, like "
                "en, fr, de, or 'all'"
            )
        if code not in out:
            out.append(code)
    return tuple(out)


def resolve_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """The codes a language set stands for: every one of :data:`ALL_LANGUAGES` for ``()``."""
    return tuple(sorted(parse_languages(languages))) or ALL_LANGUAGES


def languages_label(languages: Sequence[str]) -> list[str]:
    """How a detection language set is recorded (``_meta``, reports): ``["all"]`` or its codes."""
    codes = parse_languages(languages)
    return ["all"] if not codes or set(codes) >= set(ALL_LANGUAGES) else sorted(codes)


class _Engine:
    """A lingua detector over ``codes`` (two or more), safe to share between threads."""

    def __init__(self, codes: tuple[str, ...]) -> None:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        self.codes = codes
        self.languages = [
            Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes
        ]
        self.position = {lang: i for i, lang in enumerate(self.languages)}
        self.builder = LanguageDetectorBuilder.from_languages(*self.languages)
        self.lingua: Any = self.builder.build()
        self.preloaded = False
        self.lock = threading.Lock()

    def preload(self) -> None:
        """Load every model now (a worker's start) rather than on first use of each script."""
        with self.lock:
            if not self.preloaded:
                self.lingua = self.builder.with_preloaded_language_models().build()
                self.preloaded = True

    def confidences(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """lingua's confidence values: one row per text, one column per code."""
        import numpy as np

        out = np.zeros((len(texts), len(self.codes)))
        if texts:
            results = self.lingua.compute_language_confidence_values_in_parallel(list(texts))
            for row, values in zip(out, results, strict=True):
                for v in values:
                    row[self.position[v.language]] = v.value
        return out

    def vote(self, texts_words: Sequence[Sequence[str]]) -> npt.NDArray[np.float64]:
        """Summed log confidence of each word alone (floored): one row per text."""
        import numpy as np

        vocab = {w: i for i, w in enumerate(dict.fromkeys(w for ws in texts_words for w in ws))}
        table = np.log(np.maximum(self.confidences(list(vocab)), _WORD_FLOOR))
        out = np.zeros((len(texts_words), len(self.codes)))
        for row, ws in zip(out, texts_words, strict=True):
            if ws:
                row[:] = table[[vocab[w] for w in ws]].sum(axis=0)
        return out


_ENGINES: dict[tuple[str, ...], _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(codes: tuple[str, ...]) -> _Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(codes)
        if engine is None:
            engine = _ENGINES[codes] = _Engine(codes)
        return engine


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import numpy as np

    z = np.exp(scores - scores.max(axis=-1, keepdims=True))
    result: npt.NDArray[np.float64] = z / z.sum(axis=-1, keepdims=True)
    return result


# --- detection -------------------------------------------------------------------------------

_SHORT_LETTERS = 50  # shorter texts (~10 words) always vote: lingua's rules misfire there


class Detection(NamedTuple):
    """A language, the share of the posterior it holds, and the rule that decided."""

    lang: str
    confidence: float
    rule: str


class Detector:
    """Detects languages among ``languages`` (``()``: all of lingua's). Loads lingua on first use.

    Detectors over the same languages share one lingua detector per process, whatever their
    ``min_confidence``.
    """

    def __init__(
        self,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        self.languages = tuple(languages)
        self.min_confidence = min_confidence
        self._codes: tuple[str, ...] | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        """The languages detected among, sorted (validates them: ConfigError if unknown)."""
        if self._codes is None:
            self._codes = resolve_languages(self.languages)
        return self._codes

    def describe(self) -> dict[str, Any]:
        """What produced the labels, for an index's ``_meta``."""
        from importlib.metadata import version

        return {
            "languages": languages_label(self.languages),
            "min_confidence": self.min_confidence,
            "detector": f"lingua-language-detector {version('lingua-language-detector')}",
        }

    def preload(self) -> None:
        """Load every model now rather than on first use (peak ~1.3 GB, ~5 s on 2 cores)."""
        if len(self.codes) > 1:
            _engine(self.codes).preload()

    def decide(
        self,
        texts_words: Sequence[Sequence[str]],
        log_prior: npt.NDArray[np.float64] | None = None,
        *,
        gate: bool = False,
    ) -> list[Detection]:
        """The language of each list of words (each with evidence), before any threshold.

        ``gate``: take lingua's whole-text answer where it is near-certain and the words hold
        50 letters or more (about ten words), and let the words vote elsewhere; otherwise
        always vote.
        """
        import numpy as np

        codes = self.codes
        if len(codes) == 1:
            return [Detection(codes[0], 1.0, "single")] * len(texts_words)
        engine = _engine(codes)
        vote = list(range(len(texts_words)))
        scores = np.zeros((len(texts_words), len(codes)))
        if gate:
            long = [i for i, ws in enumerate(texts_words) if evidence(ws) >= _SHORT_LETTERS]
            whole = engine.confidences([" ".join(texts_words[i]) for i in long])
            sure = {i for i, row in zip(long, whole, strict=True) if row.max() >= _VOTE_GATE}
            for i, row in zip(long, whole, strict=True):
                scores[i] = np.log(np.maximum(row, _WORD_FLOOR))
            vote = [i for i in vote if i not in sure]
        if vote:
            scores[vote] = engine.vote([texts_words[i] for i in vote])
        prior = np.zeros(len(codes)) if log_prior is None else log_prior
        post = _softmax(scores + prior)
        han = {"zh", "ja"} <= set(codes)
        pz, pj = (prior[codes.index("zh")], prior[codes.index("ja")]) if han else (0.0, 0.0)
        out: list[Detection] = []
        voted = set(vote)
        for i, (words, row) in enumerate(zip(texts_words, post, strict=True)):
            best = int(row.argmax())
            lang, rule = codes[best], "vote" if i in voted else "lingua"
            if han and lang in ("zh", "ja") and han_only(words):
                lang, rule = han_language(words, pz, pj)
            out.append(Detection(lang, float(row[best]), rule))
        return out

    def detect_many(self, texts: Sequence[str]) -> list[str]:
        """ISO 639-1 code (or ``und``) for each text."""
        return [d.lang for d in self.detections(texts)]

    def detections(self, texts: Sequence[str]) -> list[Detection]:
        """Each text's :class:`Detection`: its language (``und`` when the words are too few
        or the confidence is below ``min_confidence``) with the confidence behind it."""
        out = [Detection(UNDETERMINED, 0.0, "short")] * len(texts)
        todo: list[tuple[int, list[str]]] = []
        for i, text in enumerate(texts):
            words = text_words(text[:_SAMPLE_CHARS])
            if evidence(words) >= _MIN_LETTERS:
                todo.append((i, words))
        if todo:
            found = self.decide([ws for _, ws in todo], gate=True)
            for (i, _), d in zip(todo, found, strict=True):
                out[i] = d if d.confidence >= self.min_confidence else d._replace(lang=UNDETERMINED)
        return out

    def detect(self, text: str) -> str:
        """ISO 639-1 code of ``text``, or ``und``."""
        return self.detect_many([text])[0]


def detect_stage(batch: Sequence[Prepared], detector: Detector) -> None:
    """Fill ``field_langs`` of each prepared record (declared ``lang`` wins)."""
    todo: list[tuple[Prepared, str]] = []
    for p in batch:
        if p.record.lang:
            p.field_langs = dict.fromkeys(p.record.texts, p.record.lang)
        else:
            todo.extend((p, f) for f in p.record.texts)
    langs = detector.detect_many([p.record.texts[f] for p, f in todo])
    for (p, f), lang in zip(todo, langs, strict=True):
        p.field_langs[f] = lang


# --- queries and passages --------------------------------------------------------------------

_PRIOR_RATIO = 20.0  # a language the index (or document) holds is 21 times as likely
_PASSAGE_MIN_LETTERS = 16  # a passage with fewer letters keeps the document's language
_DEFAULT: dict[str, Detector] = {}


def _default_detector() -> Detector:
    return _DEFAULT.setdefault("all", Detector())


def _log_prior(codes: Sequence[str], counts: Mapping[str, float]) -> npt.NDArray[np.float64]:
    """log of ``1 + R * M * share``: a language the index holds at the average share of its
    M languages is ``R + 1`` times as likely as one it lacks, however many it holds. Counts
    outside ``codes`` (``und``) are ignored; no counts, no prior (all zeros)."""
    import numpy as np

    n = np.array([max(float(counts.get(c, 0)), 0.0) for c in codes])
    total = n.sum()
    if total <= 0:
        return np.zeros(len(codes))
    held = int((n > 0).sum())
    result: npt.NDArray[np.float64] = np.log1p(_PRIOR_RATIO * held * n / total)
    return result


def explain_query(
    text: str,
    *,
    index_languages: Mapping[str, float] | None = None,
    min_confidence: float = DEFAULT_QUERY_MIN_CONFIDENCE,
    detector: Detector | None = None,
) -> Detection:
    """:func:`detect_query` with the posterior share of the answer and the rule that decided."""
    det = detector or _default_detector()
    words = text_words(text)
    if evidence(words) < _MIN_LETTERS:
        return Detection(UNDETERMINED, 0.0, "no-words")
    prior = _log_prior(det.codes, index_languages or {})
    found = det.decide([words], prior)[0]
    if index_languages and found.rule == "vote":
        found = found._replace(rule="vote+prior")
    if found.confidence < min_confidence:
        return Detection(UNDETERMINED, found.confidence, f"{found.rule}:below-{min_confidence:g}")
    return found


def detect_query(
    text: str,
    *,
    index_languages: Mapping[str, float] | None = None,
    min_confidence: float = DEFAULT_QUERY_MIN_CONFIDENCE,
    detector: Detector | None = None,
) -> str:
    """The language of a short query: an ISO 639-1 code, or ``und``.

    ``index_languages``: the index's language distribution (documents or passages per code,
    as its terms aggregation gives them; ``und`` is ignored). ``detector``: restricts the
    candidates (default: every language).

    Rule: the query's words vote (module docstring), times a prior from the index: a
    language the index holds at the average share of its languages counts ``21`` times one
    it lacks (``1 + 20 * M * share``, M languages held). A query in a language the index
    lacks still wins where its words say so clearly; where they hesitate between close
    languages (es/pt, id/ms, ru/bg, hi/mr, en/eo) the index's languages win. Han-only text is
    then read by its character sets (:func:`_han_language`). A posterior below
    ``min_confidence`` gives ``und``, and so does text without three letters of words.
    """
    return explain_query(
        text, index_languages=index_languages, min_confidence=min_confidence, detector=detector
    ).lang


def detect_passages(
    passages: Sequence[str], doc_lang: str, detector: Detector | None = None
) -> list[str]:
    """The language of each passage of a document whose language is ``doc_lang``.

    A passage keeps ``doc_lang`` when its words hold fewer than 16 letters (a heading, a
    name, numbers) or when its language is unclear: the words vote with the prior of
    :func:`detect_query` on ``doc_lang`` alone (21 to 1), and a posterior below the
    detector's ``min_confidence`` keeps ``doc_lang``. So an English abstract over a Greek
    body, or an English sentence quoted in German, gets its own language, and a heading or a
    loanword does not flip.
    """
    det = detector or _default_detector()
    out = [doc_lang] * len(passages)
    todo: list[tuple[int, list[str]]] = []
    for i, passage in enumerate(passages):
        words = text_words(passage[:_SAMPLE_CHARS])
        if evidence(words) >= _PASSAGE_MIN_LETTERS:
            todo.append((i, words))
    if todo:
        prior = _log_prior(det.codes, {doc_lang: 1.0})
        for (i, _), d in zip(todo, det.decide([ws for _, ws in todo], prior), strict=True):
            if d.confidence >= det.min_confidence:
                out[i] = d.lang
    return out
