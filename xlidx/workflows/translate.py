"""Translation and language detection on their own, as ``xlidx serve``'s LibreTranslate-style
endpoints offer them: the same :class:`~xlidx.pipeline.translate.Translator` (batched
CTranslate2, its sentence cache) and :class:`~xlidx.pipeline.detect.Detector` as ingest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlidx.errors import ModelError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from xlidx.pipeline.detect import Detection, Detector
    from xlidx.pipeline.translate import Translator


def language_targets(translator: Translator) -> dict[str, list[str]]:
    """Each language of the installed packages, with the languages it can be translated into
    (directly, or through English; none for a language packages only translate into)."""
    codes = sorted({c for pair in translator.pairs() for c in pair})
    out: dict[str, list[str]] = {}
    for src in codes:
        targets = []
        for tgt in codes:
            if tgt == src:
                continue
            try:
                translator.route(src, tgt)
            except ModelError:
                continue
            targets.append(tgt)
        out[src] = targets
    return out


def language_name(code: str) -> str:
    """``"fr"`` → ``"French"`` (lingua's names; the code itself where lingua has none)."""
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())).name.title()
    except (AttributeError, ValueError):
        return code


def source_detector(translator: Translator) -> Detector:
    """The detector for ``source: "auto"``: among the languages packages translate from."""
    from xlidx.pipeline.detect import Detector

    sources = tuple(c for c, targets in language_targets(translator).items() if targets)
    return Detector(sources or ("en",))


def by_source(found: Sequence[Detection], default: str = "en") -> dict[str, list[int]]:
    """The positions of the texts of each detected source language (pure); a text whose
    language is unclear (``und``) is taken as ``default``, the pivot of the packages."""
    from xlidx.documents import UNDETERMINED

    out: dict[str, list[int]] = {}
    for i, d in enumerate(found):
        out.setdefault(default if d.lang == UNDETERMINED else d.lang, []).append(i)
    return out
