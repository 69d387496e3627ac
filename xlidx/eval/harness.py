"""Run queries through :class:`~xlidx.search.Searcher` and measure the rankings.

For each requested mode (``hybrid``, ``bm25``, ``knn``) every query is searched once; the run
is written as a TREC run file (optional) and scored with :mod:`xlidx.eval.metrics`:

* ``metrics``: the mean of nDCG@10, RR@10, R@1, R@100 over the queries with a relevant document;
* ``per_language``: the same with the qrels restricted to the relevant documents in one
  document language (queries with no such document are left out), over the unchanged run;
* ``language_share``: for each query language, the share of the top-10 hits in each document
  language next to the share of the relevant documents in that language. A retriever that
  prefers some language shows it here ("English inclination").

Queries are encoded once, in batches, and the same vector serves every mode; the query
language is the one the queries file declares, else the detected one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlidx.errors import ConfigError
from xlidx.eval.data import EvalQuery, Qrels, check_qrels
from xlidx.eval.metrics import MEASURES, aggregate, ordered, per_query, write_trec_run
from xlidx.eval.report import MissedQuery
from xlidx.query.plan import MODES, Query
from xlidx.search import QueryResult, Searcher

Progress = Callable[[str, int, int], None]  # (stage, done, total); stage: "encoding" or a mode
ENCODE_BATCH = 32
UNKNOWN_LANG = "und"
MISSING = "missing"  # a judged document the index does not hold


@dataclass(frozen=True)
class EvalOptions:
    modes: tuple[str, ...] = MODES
    k: int = 100  # hits per query (R@100 needs 100)
    translate: bool = False  # translate each query into the index's languages (BM25)
    balance: bool = False  # per-language normalization before hybrid fusion
    fusion: str | None = None  # None: the engine's default (minmax)
    weights: tuple[float, float] | None = None  # (bm25, knn); None: the engine decides
    candidates: int | None = None
    run_prefix: str | Path | None = None  # write <prefix>.<mode>.trec (see run_path)
    tag: str = "xlidx"
    measures: tuple[str, ...] = MEASURES
    share_depth: int = 10
    centering: bool = True  # center query vectors where the index is calibrated to
    # searches in flight at once (each mostly waits on the cluster); the latencies reported
    # are those of searches run this many at a time
    concurrency: int = 4


@dataclass
class ModeReport:
    mode: str
    metrics: dict[str, float]
    per_language: dict[str, dict[str, Any]]
    language_share: dict[str, dict[str, Any]]
    queries: int
    evaluated: int
    run: dict[str, list[tuple[str, float]]] = field(repr=False)
    latency_ms: dict[str, float] = field(default_factory=dict)
    fusion: dict[str, Any] | None = None
    run_file: str | None = None
    per_query: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    hit_langs: dict[str, list[str]] = field(default_factory=dict, repr=False)
    doc_langs: dict[str, str] = field(default_factory=dict, repr=False)  # judged docs
    query_langs: dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.mode,
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "per_language": {
                lang: {
                    "queries": v["queries"],
                    "metrics": {k: round(x, 4) for k, x in v["metrics"].items()},
                }
                for lang, v in self.per_language.items()
            },
            "language_share": self.language_share,
            "queries": self.queries,
            "evaluated": self.evaluated,
            "latency_ms": self.latency_ms,
            "run_file": self.run_file,
        }
        if self.fusion is not None:
            out["fusion"] = self.fusion
        return out


def run_path(prefix: str | Path, index: str, mode: str) -> Path:
    """``<prefix>.<mode>.trec``; a directory (existing, or ending in ``/``) gives
    ``<dir>/<index>.<mode>.trec``."""
    text = str(prefix)
    p = Path(text)
    if p.is_dir() or text.endswith(("/", "\\")):
        return p / f"{index}.{mode}.trec"
    return p.with_name(f"{p.name}.{mode}.trec")


def _base_query(q: EvalQuery, options: EvalOptions) -> Query:
    try:
        query = Query(q.text).k(options.k)
        if options.fusion is not None or options.weights is not None:
            query = query.fusion(options.fusion or "minmax", options.weights)
        if options.candidates is not None:
            query = query.candidates(options.candidates)
        return query.balance(options.balance)
    except ConfigError as exc:
        raise ConfigError(f"query {q.qid!r}: {exc}") from None


def _percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    i = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[i]


def doc_languages(searcher: Searcher, ids: Sequence[str]) -> dict[str, str]:
    """The ``xlidx.lang`` of each document id (``missing`` when the index does not hold it)."""
    out: dict[str, str] = {}
    index = searcher.state().index
    unique = sorted(set(ids))
    for start in range(0, len(unique), 1000):
        chunk = unique[start : start + 1000]
        found = searcher.backend.mget(index, chunk, includes=["xlidx.lang"])
        for doc_id in chunk:
            if doc_id not in found:
                out[doc_id] = MISSING
                continue
            x = found[doc_id].get("xlidx") or {}
            lang = x.get("lang") if isinstance(x, dict) else None
            out[doc_id] = str(lang or UNKNOWN_LANG)
    return out


def per_language_metrics(
    run: Mapping[str, Sequence[tuple[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    langs: Mapping[str, str],
    measures: Sequence[str] = MEASURES,
) -> dict[str, dict[str, Any]]:
    """Metrics with the qrels cut down to the relevant documents of each document language."""
    by_lang: dict[str, dict[str, dict[str, int]]] = {}
    for qid, docs in qrels.items():
        for doc_id, rel in docs.items():
            if rel > 0:
                lang = langs.get(doc_id, UNKNOWN_LANG)
                by_lang.setdefault(lang, {}).setdefault(qid, {})[doc_id] = rel
    out: dict[str, dict[str, Any]] = {}
    for lang in sorted(by_lang):
        values = per_query(run, by_lang[lang], measures)
        out[lang] = {"queries": len(values), "metrics": aggregate(values, measures)}
    return out


def language_share(
    hit_langs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    query_langs: Mapping[str, str],
    doc_langs: Mapping[str, str],
    depth: int = 10,
) -> dict[str, dict[str, Any]]:
    """Per query language: share of the top-``depth`` hits and of the relevant documents, by
    document language (over the queries that have a relevant document)."""
    hits: dict[str, Counter[str]] = {}
    relevant: dict[str, Counter[str]] = {}
    queries: Counter[str] = Counter()
    for qid, docs in qrels.items():
        rel = [d for d, r in docs.items() if r > 0]
        if not rel:
            continue
        ql = query_langs.get(qid, UNKNOWN_LANG)
        queries[ql] += 1
        relevant.setdefault(ql, Counter()).update(doc_langs.get(d, UNKNOWN_LANG) for d in rel)
        hits.setdefault(ql, Counter()).update(hit_langs.get(qid, [])[:depth])

    def shares(c: Counter[str]) -> dict[str, float]:
        total = sum(c.values())
        return {k: round(v / total, 4) for k, v in sorted(c.items())} if total else {}

    return {
        ql: {
            "queries": queries[ql],
            "depth": depth,
            "hits": shares(hits.get(ql, Counter())),
            "relevant": shares(relevant[ql]),
        }
        for ql in sorted(queries)
    }


def encode_queries(
    searcher: Searcher,
    queries: Sequence[EvalQuery],
    progress: Progress = lambda _stage, _done, _total: None,
) -> tuple[dict[str, list[float]], float]:
    """Each query's vector (by query id), encoded in batches; and the milliseconds it took."""
    embedder = searcher.embedder()
    out: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    progress("encoding", 0, len(queries))
    for start in range(0, len(queries), ENCODE_BATCH):
        batch = queries[start : start + ENCODE_BATCH]
        for q, v in zip(batch, embedder.encode_query([q.text for q in batch]), strict=True):
            out[q.qid] = [float(x) for x in v]
        progress("encoding", len(out), len(queries))
    return out, (time.perf_counter() - t0) * 1000


def run_eval(
    searcher: Searcher,
    queries: Sequence[EvalQuery],
    qrels: Qrels,
    options: EvalOptions | None = None,
    *,
    vectors: Mapping[str, Sequence[float]] | None = None,
    progress: Progress = lambda _stage, _done, _total: None,
) -> list[ModeReport]:
    """Search every query in every mode of ``options.modes`` and score the runs.

    ``vectors`` (query id → query vector, e.g. from an earlier :func:`encode_queries`) skips
    encoding those queries again.
    """
    options = options or EvalOptions()
    if not options.modes:
        raise ConfigError("no mode to evaluate: give hybrid, bm25 and/or knn")
    for mode in options.modes:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}: expected {', '.join(MODES)}")
    queries = list(queries)
    check_qrels(queries, qrels)
    base = {q.qid: _base_query(q, options) for q in queries}
    searcher.state()  # fail fast on a missing index

    needs_vector = any(m != "bm25" for m in options.modes)
    given = dict(vectors or {})
    encode_ms = 0.0
    todo = [q for q in queries if q.qid not in given] if needs_vector else []
    if todo:
        fresh, encode_ms = encode_queries(searcher, todo, progress)
        given.update(fresh)
    query_langs = {
        q.qid: q.lang
        or searcher.encoder.language(q.text, given.get(q.qid) if options.centering else None)
        for q in queries
    }

    prepared: dict[str, Query] = {}
    for q in queries:
        query = base[q.qid].query_lang(query_langs[q.qid]).centering(options.centering)
        if needs_vector:
            raw = given[q.qid]
            query = query.vector(
                searcher.encoder.centered(raw, query_langs[q.qid], on=options.centering)
            )
        prepared[q.qid], _ = searcher.prepare(
            query.mode("hybrid" if needs_vector else "bm25"), translate=options.translate
        )

    judgments = {qid: dict(docs) for qid, docs in qrels.judgments.items()}
    doc_langs = doc_languages(searcher, [d for docs in judgments.values() for d in docs])
    reports: list[ModeReport] = []
    for mode in options.modes:
        run: dict[str, list[tuple[str, float]]] = {}
        hit_langs: dict[str, list[str]] = {}
        took: list[float] = []
        fusion: dict[str, set[Any]] = {"weights": set(), "fused_on": set()}
        progress(mode, 0, len(queries))

        def search(q: EvalQuery, mode: str = mode) -> QueryResult:
            return searcher.search(prepared[q.qid].mode(mode), translate=False)

        with ThreadPoolExecutor(max(1, options.concurrency)) as pool:
            results = pool.map(search, queries)  # answers in the queries' order
            for i, (q, res) in enumerate(zip(queries, results, strict=True), start=1):
                run[q.qid] = ordered([(h.id, h.score) for h in res.hits])
                hit_langs[q.qid] = [h.lang or UNKNOWN_LANG for h in res.hits]
                took.append(res.took_ms)
                if res.weights is not None:
                    fusion["weights"].add(res.weights)
                if res.fused_on is not None:
                    fusion["fused_on"].add(res.fused_on)
                progress(mode, i, len(queries))
        values = per_query(run, judgments, options.measures)
        report = ModeReport(
            mode=mode,
            metrics=aggregate(values, options.measures),
            per_language=per_language_metrics(run, judgments, doc_langs, options.measures),
            language_share=language_share(
                hit_langs, judgments, query_langs, doc_langs, options.share_depth
            ),
            queries=len(queries),
            evaluated=len(values),
            run=run,
            per_query=values,
            hit_langs=hit_langs,
            doc_langs=doc_langs,
            query_langs=query_langs,
            latency_ms={
                "p50": round(_percentile(took, 50), 2),
                "p95": round(_percentile(took, 95), 2),
                "encode_per_query": (
                    round(encode_ms / len(todo), 2) if todo and mode != "bm25" else 0.0
                ),
            },
        )
        if mode == "hybrid":
            first = next(iter(prepared.values())).plan()
            report.fusion = {
                "method": first.fusion,
                "balance": first.balance,
                "weights": sorted([list(w) for w in fusion["weights"]]),
                "fused_on": sorted(fusion["fused_on"]),
            }
        if options.run_prefix is not None:
            path = run_path(options.run_prefix, searcher.index, mode)
            report.run_file = str(write_trec_run(path, run, options.tag))
        reports.append(report)
    return reports


def worst_queries(
    report: ModeReport,
    queries: Sequence[EvalQuery],
    qrels: Qrels,
    *,
    measure: str = "nDCG@10",
    n: int = 10,
    depth: int = 10,
) -> list[MissedQuery]:
    """The ``n`` judged queries with the lowest ``measure`` in ``report`` (ties: query order),
    each with its top ``depth`` hits and the relevant documents it did not rank there."""
    by_id = {q.qid: q for q in queries}
    order = {q.qid: i for i, q in enumerate(queries)}
    scored = [(v.get(measure, 0.0), order.get(qid, 0), qid) for qid, v in report.per_query.items()]
    out: list[MissedQuery] = []
    for score, _i, qid in sorted(scored)[:n]:
        judged = qrels.judgments.get(qid, {})
        hits = report.run.get(qid, [])[:depth]
        langs = report.hit_langs.get(qid, [])
        shown = [
            (doc, langs[i] if i < len(langs) else UNKNOWN_LANG, s, judged.get(doc, 0) > 0)
            for i, (doc, s) in enumerate(hits)
        ]
        seen = {doc for doc, _s in hits}
        missed = [
            (doc, report.doc_langs.get(doc, UNKNOWN_LANG))
            for doc, rel in sorted(judged.items())
            if rel > 0 and doc not in seen
        ]
        q = by_id.get(qid)
        out.append(
            MissedQuery(
                qid=qid,
                text=q.text if q else "",
                lang=report.query_langs.get(qid) or (q.lang if q and q.lang else UNKNOWN_LANG),
                score=score,
                hits=shown,
                missed=missed,
            )
        )
    return out
