"""Language detection: accuracy and throughput, the old ten-language default against all languages.

On the fixture texts (tests/fixtures/langtexts: 23 languages, 20 paragraphs and 12 short
questions each, written for the project) it measures:

* ``paragraphs``: accuracy and paragraphs/s (batches of 64, as ingest sends them, after a
  warm-up) of
  ``legacy_10``: the detection before this change, lingua restricted to en fr de es it pt nl
  ru zh ja, whole text, ``und`` below 0.5;
  ``lingua_all``: the same rule over all 75 languages;
  ``xlidx_all``: :class:`xlidx.pipeline.detect.Detector` with its defaults (all languages,
  word vote where lingua is not near-certain);
* ``questions``: accuracy of the same three, and of :func:`detect_query` without a prior,
  with the index's distribution as a prior (declared, and as detection labelled the
  paragraphs), with the query's own language missing from the index (leave one out) and on
  an English-only index;
* ``thresholds``: right / wrong / und against ``min_confidence`` for ``lingua_all`` and
  ``xlidx_all`` on paragraphs and questions;
* ``build``: in a fresh process each, lingua's detector build and first detection, lazy and
  with ``with_preloaded_language_models()``, and the peak memory.

Run from the repository root::

    .venv/bin/python benchmarks/bench_detect.py [--rounds 3]

It prints one JSON object. ``load`` is ``os.getloadavg()`` before and after: other work on
the machine slows the throughput figures, not the accuracy ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TEXTS = REPO / "tests" / "fixtures" / "langtexts"
LEGACY = ("en", "fr", "de", "es", "it", "pt", "nl", "ru", "zh", "ja")
THRESHOLDS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

Labelled = list[tuple[str, str]]  # (language, text)


def load() -> tuple[Labelled, Labelled]:
    paragraphs: Labelled = []
    questions: Labelled = []
    for path in sorted(TEXTS.glob("*.json")):
        d = json.loads(path.read_text("utf-8"))
        paragraphs += [(path.stem, p) for p in d["paragraphs"]]
        questions += [(path.stem, q) for q in d["questions"]]
    return paragraphs, questions


class WholeText:
    """The rule before this change: lingua's top language on the whole text, und below 0.5."""

    def __init__(self, codes: Sequence[str] | None, min_confidence: float = 0.5) -> None:
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        if codes is None:
            builder = LanguageDetectorBuilder.from_all_languages()
        else:
            iso = [getattr(IsoCode639_1, c.upper()) for c in codes]
            builder = LanguageDetectorBuilder.from_iso_codes_639_1(*iso)
        self.lingua = builder.with_preloaded_language_models().build()
        self.min_confidence = min_confidence

    def confidences(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        out = []
        for values in self.lingua.compute_language_confidence_values_in_parallel(
            [t[:2000] for t in texts]
        ):
            top = values[0]
            out.append((top.language.iso_code_639_1.name.lower(), top.value))
        return out

    def detect_many(self, texts: Sequence[str]) -> list[str]:
        return [
            lang if conf >= self.min_confidence else "und" for lang, conf in self.confidences(texts)
        ]


def accuracy(data: Labelled, found: Sequence[str]) -> dict[str, Any]:
    right = Counter(code for (code, _), lang in zip(data, found, strict=True) if lang == code)
    total = Counter(code for code, _ in data)
    errors = Counter(
        f"{code}->{lang}" for (code, _), lang in zip(data, found, strict=True) if lang != code
    )
    return {
        "accuracy": round(sum(right.values()) / len(data), 4),
        "right": sum(right.values()),
        "of": len(data),
        "worst_languages": {
            c: round(right[c] / total[c], 2)
            for c in sorted(total, key=lambda c: right[c] / total[c])[:5]
        },
        "errors": dict(errors.most_common(12)),
    }


def throughput(
    detect_many: Callable[[Sequence[str]], list[str]], texts: list[str], rounds: int
) -> float:
    detect_many(texts[:64])  # warm-up
    batches = [texts[i : i + 64] for i in range(0, len(texts), 64)]
    t0 = time.perf_counter()
    for _ in range(rounds):
        for batch in batches:
            detect_many(batch)
    return round(rounds * len(texts) / (time.perf_counter() - t0), 1)


BUILD_SNIPPET = """
import json, sys, time
t0 = time.perf_counter()
from xlidx.pipeline import detect
det = detect.Detector(tuple(sys.argv[1].split(',')) if sys.argv[1] else ())
detect._engine(det.codes)  # lingua's detector, models loaded on first use
if sys.argv[2] == 'preload':
    det.preload()
t1 = time.perf_counter()
det.detect('The weather is nice today, so we walk to the park after lunch.')
t2 = time.perf_counter()
det.detect('Das Wetter ist heute schön, also gehen wir nach dem Essen in den Park.')
t3 = time.perf_counter()
hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]
print(json.dumps({'build_s': round(t1 - t0, 2), 'first_detect_s': round(t2 - t1, 2),
                  'second_detect_s': round(t3 - t2, 3), 'peak_rss_mb': int(hwm) // 1024}))
"""


def build_times() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, langs in (("all", ""), ("legacy_10", ",".join(LEGACY))):
        for mode in ("lazy", "preload"):
            proc = subprocess.run(
                [sys.executable, "-c", BUILD_SNIPPET, langs, mode],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            out[f"{name}_{mode}"] = json.loads(proc.stdout)
    return out


def threshold_table(data: Labelled, labels: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """``{threshold: [right, wrong, und]}``, and the least confidence of a right answer."""
    table: dict[str, Any] = {
        "min_right_confidence": round(
            min(conf for (c, _), (lang, conf) in zip(data, labels, strict=True) if lang == c), 3
        )
    }
    for th in THRESHOLDS:
        right = sum(
            1 for (c, _), (lang, conf) in zip(data, labels, strict=True) if conf >= th and lang == c
        )
        und = sum(1 for _, conf in labels if conf < th)
        table[f"{th:g}"] = [right, len(data) - right - und, und]
    return table


def xlidx_confidences(det: Any, texts: Sequence[str]) -> list[tuple[str, float]]:
    from xlidx.pipeline.detect import _MIN_LETTERS, _SAMPLE_CHARS, evidence, text_words

    words = [text_words(t[:_SAMPLE_CHARS]) for t in texts]
    keep = [i for i, w in enumerate(words) if evidence(w) >= _MIN_LETTERS]
    found = det.decide([words[i] for i in keep], gate=True)
    out = [("und", 0.0)] * len(texts)
    for i, d in zip(keep, found, strict=True):
        out[i] = (d.lang, d.confidence)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the paragraphs")
    parser.add_argument("--no-build", action="store_true", help="skip the fresh-process builds")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from xlidx.pipeline.detect import Detector, detect_query

    load_before = os.getloadavg()
    paragraphs, questions = load()
    para_texts = [t for _, t in paragraphs]
    random.Random(0).shuffle(para_texts)  # noqa: S311 (a fixed order, not a secret)
    q_texts = [t for _, t in questions]

    legacy = WholeText(LEGACY)
    lingua_all = WholeText(None)
    xlidx_all = Detector()
    xlidx_all.preload()
    systems: dict[str, Callable[[Sequence[str]], list[str]]] = {
        "legacy_10": legacy.detect_many,
        "lingua_all": lingua_all.detect_many,
        "xlidx_all": xlidx_all.detect_many,
    }
    result: dict[str, Any] = {"cpus": os.cpu_count(), "languages": len(xlidx_all.codes)}
    result["paragraphs"] = {
        name: {
            **accuracy(paragraphs, fn([t for _, t in paragraphs])),
            "paragraphs_per_s": throughput(fn, para_texts, args.rounds),
        }
        for name, fn in systems.items()
    }
    result["questions"] = {name: accuracy(questions, fn(q_texts)) for name, fn in systems.items()}

    declared = Counter(code for code, _ in paragraphs)
    detected = Counter(xlidx_all.detect_many([t for _, t in paragraphs]))
    priors: dict[str, Callable[[str], dict[str, float] | None]] = {
        "detect_query_no_prior": lambda code: None,
        "detect_query_index_declared": lambda code: dict(declared),
        "detect_query_index_detected": lambda code: dict(detected),
        "detect_query_language_not_in_index": lambda code: {
            k: v for k, v in declared.items() if k != code
        },
        "detect_query_english_only_index": lambda code: {"en": 1000},
    }
    for name, prior in priors.items():
        found = [detect_query(q, index_languages=prior(code)) for code, q in questions]
        result["questions"][name] = accuracy(questions, found)
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        for q in q_texts:
            detect_query(q, index_languages=declared)
    result["questions"]["detect_query_per_s"] = round(
        args.rounds * len(q_texts) / (time.perf_counter() - t0), 1
    )

    result["thresholds"] = {
        "lingua_all_paragraphs": threshold_table(
            paragraphs, lingua_all.confidences([t for _, t in paragraphs])
        ),
        "lingua_all_questions": threshold_table(questions, lingua_all.confidences(q_texts)),
        "xlidx_all_paragraphs": threshold_table(
            paragraphs, xlidx_confidences(xlidx_all, [t for _, t in paragraphs])
        ),
        "xlidx_all_questions": threshold_table(questions, xlidx_confidences(xlidx_all, q_texts)),
    }
    if not args.no_build:
        result["build"] = build_times()
    result["load"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
