"""Retrieval metrics (computed by ir-measures over pytrec_eval) and TREC run files.

A run maps each query id to its ranked hits, ``[(docid, score), …]`` best first. Evaluators
sort by score and break ties by document id, which would reorder tied hits (the server's
hybrid fusion ties often); so the scores written and evaluated are made strictly decreasing
in single precision first (:func:`ordered`), and the run file, the evaluation and xlidx's
own ranking always agree.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xlidx.errors import ConfigError

MEASURES: tuple[str, ...] = ("nDCG@10", "RR@10", "R@1", "R@100")

Ranked = Sequence[tuple[str, float]]
Run = Mapping[str, Ranked]
Judgments = Mapping[str, Mapping[str, int]]


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _below_f32(x: float) -> float:
    """The largest single-precision value below ``x`` (itself single-precision, finite)."""
    if x == 0.0:
        return -_f32(1e-45)  # the smallest negative subnormal
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    bits = bits - 1 if x > 0 else bits + 1
    return float(struct.unpack("<f", struct.pack("<I", bits))[0])


def ordered(hits: Ranked) -> list[tuple[str, float]]:
    """``hits`` with strictly decreasing scores and no repeated document (first one kept).

    Scores are rounded to single precision (pytrec_eval compares in single precision: two
    doubles a hair apart tie there and are re-sorted by document id); a score that does not
    fall below the previous one becomes the next single-precision value below it.
    """
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    prev: float | None = None
    for doc_id, score in hits:
        if doc_id in seen:
            continue
        seen.add(doc_id)
        s = float(score)
        s = _f32(s) if math.isfinite(s) and abs(s) < 3.0e38 else math.nan
        if prev is not None and not s < prev:  # a tie, a rise, or not a number
            s = _below_f32(prev)
        elif prev is None and math.isnan(s):
            s = 0.0
        out.append((doc_id, s))
        prev = s
    return out


def _parse(measures: Iterable[str]) -> list[Any]:
    import ir_measures

    parsed = []
    for m in measures:
        try:
            parsed.append(ir_measures.parse_measure(m))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError):
            raise ConfigError(f"unknown measure {m!r}: try one of {', '.join(MEASURES)}") from None
    return parsed


def judged_queries(qrels: Judgments) -> list[str]:
    """Query ids with at least one relevant (relevance > 0) document: the ones evaluated."""
    return [q for q, docs in qrels.items() if any(r > 0 for r in docs.values())]


def per_query(
    run: Run, qrels: Judgments, measures: Sequence[str] = MEASURES
) -> dict[str, dict[str, float]]:
    """``{qid: {measure: value}}`` for every query with a relevant document.

    A query the run has no hits for scores 0 on every measure.
    """
    import ir_measures

    qids = judged_queries(qrels)
    values: dict[str, dict[str, float]] = {q: dict.fromkeys(measures, 0.0) for q in qids}
    judged = {q: dict(qrels[q]) for q in qids}
    scored = {q: dict(ordered(run[q])) for q in qids if q in run and len(run[q]) > 0}
    if not scored:
        return values
    names = {str(m): m for m in measures}
    for metric in ir_measures.iter_calc(_parse(measures), judged, scored):
        name = names.get(str(metric.measure), str(metric.measure))
        if metric.query_id in values:
            values[metric.query_id][name] = float(metric.value)
    return values


def aggregate(
    values: Mapping[str, Mapping[str, float]], measures: Sequence[str] = MEASURES
) -> dict[str, float]:
    """The mean of each measure over the queries in ``values`` (0.0 when there are none)."""
    n = len(values)
    return {m: (sum(v[m] for v in values.values()) / n if n else 0.0) for m in measures}


def evaluate(run: Run, qrels: Judgments, measures: Sequence[str] = MEASURES) -> dict[str, float]:
    """Mean of each measure over the queries that have a relevant document."""
    return aggregate(per_query(run, qrels, measures), measures)


def write_trec_run(path: str | Path, run: Run, tag: str = "xlidx") -> Path:
    """Write ``run`` as a TREC run file: ``qid Q0 docid rank score tag`` per line."""
    p = Path(path)
    if any(c.isspace() for c in tag) or not tag:
        raise ConfigError(f"invalid run tag {tag!r}: one word, no spaces")
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for qid, hits in run.items():
            if any(c.isspace() for c in qid):
                raise ConfigError(f"query id {qid!r} has whitespace: it cannot go in a TREC run")
            for rank, (doc_id, score) in enumerate(ordered(hits), start=1):
                if any(c.isspace() for c in doc_id):
                    raise ConfigError(
                        f"document id {doc_id!r} has whitespace: it cannot go in a TREC run"
                    )
                f.write(
                    f"{qid} Q0 {doc_id} {rank} {score:.9g} {tag}\n"
                )  # exact in single precision
    return p


def read_trec_run(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """A TREC run file back as ``{qid: [(docid, score), …]}``, best first."""
    p = Path(path)
    run: dict[str, list[tuple[str, float]]] = {}
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot be read: {exc}") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            raise ConfigError(f"{p}:{n}: expected 'qid Q0 docid rank score tag'")
        try:
            score = float(parts[4])
        except ValueError:
            raise ConfigError(f"{p}:{n}: the score {parts[4]!r} is not a number") from None
        run.setdefault(parts[0], []).append((parts[2], score))
    for hits in run.values():
        hits.sort(key=lambda h: -h[1])
    return run
