"""Encode a query for an index: its language, its translations and its vector.

Models load on first use, from what the index's ``_meta`` records, and the model is checked
against the index before it encodes anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from xlidx.documents import UNDETERMINED
from xlidx.errors import ModelError
from xlidx.pipeline.calibration import Calibration, from_index_meta
from xlidx.query.plan import Query, QueryPlan
from xlidx.search.facts import IndexFacts
from xlidx.spec import check_model


class QueryEncoder:
    def __init__(
        self,
        facts: IndexFacts,
        *,
        embedder: Any = None,
        translator: Any = None,
        device: str = "auto",
        load: Callable[[str, str], Any] | None = None,
    ) -> None:
        """``load(source, device)`` gives the index's embedding model (default:
        :func:`~xlidx.pipeline.embed.load_embedder`; a :class:`~xlidx.workflows.Cluster`
        passes its own, which shares one model among its indices)."""
        self.facts = facts
        self.device = device
        self._load = load
        self._embedder = embedder
        self._translator = translator
        self._loaded_from: str | None = None  # the source this encoder loaded its model from
        self._detector: Any = None
        self._detector_for: tuple[str, ...] = ()
        self._calibrated: tuple[Any, Calibration | None] | None = None

    def embedder(self) -> Any:
        state = self.facts.state()
        emb = state.xlidx_meta.get("embedding", {})
        source = str(emb.get("source") or emb.get("model"))
        # a model it loaded is loaded again when the index moved to another one meanwhile
        if self._embedder is None or self._loaded_from not in (None, source):
            if self._load is not None:
                self._embedder = self._load(source, self.device)
            else:
                from xlidx.pipeline.embed import load_embedder

                self._embedder = load_embedder(source, device=self.device)
            self._loaded_from = source
        check_model(state.meta, self._embedder.describe(), self.facts.index)
        return self._embedder

    def calibration(self) -> Calibration | None:
        """The index's calibration (:mod:`xlidx.pipeline.calibration`), if it has one (read
        once per state of the index)."""
        state = self.facts.state()
        if self._calibrated is None or self._calibrated[0] is not state:
            self._calibrated = (state, from_index_meta(state.xlidx_meta))
        return self._calibrated[1]

    def language(self, text: str, raw_vector: Sequence[float] | None = None) -> str:
        """The query's language: its words (:meth:`detect`); where they leave it open
        (``und``: too short, or unclear) and the index is centered, the language whose
        query-side mean is nearest to the query's vector."""
        lang = self.detect(text)
        cal = self.calibration()
        if lang == UNDETERMINED and raw_vector is not None and cal is not None and cal.centers:
            return cal.nearest_language(raw_vector) or lang
        return lang

    def detect(self, text: str) -> str:
        """The query's language: the one detection path for BM25 field choice and the vector
        side alike (:func:`~xlidx.pipeline.detect.detect_query`), among the languages the
        index detects, with the index's own language distribution as the prior."""
        from xlidx.pipeline.detect import Detector, detect_query

        candidates = self.query_candidates()  # they follow the index's languages
        if self._detector is None or self._detector_for != candidates:
            self._detector, self._detector_for = Detector(candidates), candidates
        return detect_query(text, index_languages=self.facts.languages(), detector=self._detector)

    def query_candidates(self) -> tuple[str, ...]:
        """The languages a query is told apart among: those the index holds or translates
        into, and English (the pivot of translation), decided from the index's own data.

        Loading lingua's models for all 75 languages takes 5-9 s and 1 GB, once per process;
        a query in a language the index neither holds nor translates into has no fields of
        its own to match, and is labelled with the closest language the index has.
        """
        from xlidx.pipeline.detect import ALL_LANGUAGES

        x = self.facts.state().xlidx_meta
        held = {*self.facts.languages(), *x.get("translate_to", []), "en"} & set(ALL_LANGUAGES)
        return tuple(sorted(held))

    def translate(self, text: str, src: str) -> dict[str, str]:
        """``text`` in each language the index holds that a package can translate into."""
        x = self.facts.state().xlidx_meta
        held = sorted(self.facts.languages(), key=lambda lang: -self.facts.languages()[lang])
        targets = [
            lang for lang in dict.fromkeys([*held, *x.get("translate_to", [])]) if lang != src
        ]
        if self._translator is None:
            from xlidx.pipeline.translate import Translator

            self._translator = Translator(device=self.device)
        out: dict[str, str] = {}
        for tgt in targets:
            try:
                self._translator.route(src, tgt)
            except ModelError:
                continue
            out[tgt] = self._translator.translate([text], src, tgt)[0]
        return out

    def prepare(self, query: Query, *, translate: bool = False) -> tuple[Query, dict[str, float]]:
        """Fill in query language, translations and vector; return timings."""
        plan = query.plan()
        timings = {"encode_ms": 0.0, "translate_ms": 0.0}
        text_fields = self.facts.state().xlidx_meta.get("text_fields")
        if text_fields and plan.text_fields == QueryPlan(text="x").text_fields:
            query = query.text_fields(*text_fields)
        cal = self.calibration() if plan.centering and plan.mode != "bm25" else None
        centered = cal is not None and cal.centers
        raw: list[float] | None = None
        if plan.mode != "bm25" and plan.vector is None:
            t0 = time.perf_counter()
            raw = [float(v) for v in self.embedder().encode_query([plan.text])[0]]
            timings["encode_ms"] = (time.perf_counter() - t0) * 1000
        if plan.query_lang is None and (plan.mode != "knn" or (centered and raw is not None)):
            query = query.query_lang(self.language(plan.text, raw if centered else None))
        plan = query.plan()
        if translate and plan.mode != "knn" and plan.query_lang not in (None, "und"):
            t0 = time.perf_counter()
            assert plan.query_lang is not None
            query = query.translations(self.translate(plan.text, plan.query_lang))
            timings["translate_ms"] = (time.perf_counter() - t0) * 1000
        if raw is not None:
            # a vector given with the query is taken as it is (see `centered`)
            query = query.vector(self.centered(raw, plan.query_lang, on=plan.centering))
        return query, timings

    def query_vectors(self, texts: Sequence[str]) -> list[list[float]]:
        """The vector :meth:`prepare` gives each of ``texts`` as a query (its language
        detected, the query-side mean of that language taken off where the index is
        centered), encoded in one call."""
        raws = self.embedder().encode_query(list(texts))
        cal = self.calibration()
        out: list[list[float]] = []
        for text, row in zip(texts, raws, strict=True):
            raw = [float(v) for v in row]
            out.append(self.centered(raw, self.language(text, raw)) if cal and cal.centers else raw)
        return out

    def centered(self, raw: Sequence[float], lang: str | None, *, on: bool = True) -> list[float]:
        """A raw query vector as the index wants it: centered with the query-side mean of
        ``lang`` where the index is centered (and ``on``), else as it is."""
        cal = self.calibration() if on else None
        if cal is None:
            return [float(v) for v in raw]
        return cal.center_query(raw, lang)
