"""Language detection for each text field, with lingua restricted to the configured languages.

A detection whose confidence is below ``min_confidence`` gives ``und`` (undetermined); so does
text with no letters. A record that declares its own ``lang`` is not detected at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xlidx.documents import UNDETERMINED, Prepared, is_lang_code
from xlidx.errors import ConfigError

DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "it", "pt", "nl", "ru", "zh", "ja")
DEFAULT_MIN_CONFIDENCE = 0.5
_SAMPLE_CHARS = 2000  # detecting on the first 2,000 characters is as good and much faster


def parse_languages(codes: Sequence[str]) -> tuple[str, ...]:
    """Validate ISO 639-1 codes against what lingua knows (imports lingua)."""
    from lingua import IsoCode639_1

    out: list[str] = []
    for raw in codes:
        code = raw.strip().lower()
        if not code:
            continue
        if not is_lang_code(code) or not hasattr(IsoCode639_1, code.upper()):
            raise ConfigError(f"unknown language code {raw!r}: use ISO 639-1 codes like en, fr, de")
        if code not in out:
            out.append(code)
    if len(out) < 1:
        raise ConfigError("no languages configured for detection")
    return tuple(out)


class Detector:
    """Detects the language of texts among ``languages``. Loads lingua on first use."""

    def __init__(
        self,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        self.languages = tuple(languages)
        self.min_confidence = min_confidence
        self._detector: Any = None

    def _get(self) -> Any:
        if self._detector is None:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            codes = [getattr(IsoCode639_1, c.upper()) for c in parse_languages(self.languages)]
            if len(codes) == 1:
                self._detector = ("single", codes[0].name.lower())
            else:
                self._detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()
        return self._detector

    def detect_many(self, texts: Sequence[str]) -> list[str]:
        """ISO 639-1 code (or ``und``) for each text."""
        det = self._get()
        out: list[str] = [UNDETERMINED] * len(texts)
        todo = [(i, t[:_SAMPLE_CHARS]) for i, t in enumerate(texts) if any(c.isalpha() for c in t)]
        if not todo:
            return out
        if isinstance(det, tuple):
            for i, _ in todo:
                out[i] = det[1]
            return out
        results = det.compute_language_confidence_values_in_parallel([t for _, t in todo])
        for (i, _), values in zip(todo, results, strict=True):
            if values and values[0].value >= self.min_confidence:
                out[i] = values[0].language.iso_code_639_1.name.lower()
        return out


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
