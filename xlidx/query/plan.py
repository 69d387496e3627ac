"""An engine-neutral query plan and its immutable builder.

``Query("text").mode("hybrid").k(10).filter("topic", "food")`` returns a new object at each
step (nothing is mutated), and ``.plan()`` gives the frozen :class:`QueryPlan` that a backend
renders into a request body. User text is only ever placed in ``match``/``multi_match``
queries, never in ``query_string`` syntax.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from xlidx.documents import is_lang_code
from xlidx.errors import ConfigError
from xlidx.plans import (
    FUSIONS,
    MAX_QUERY_CHARS,
    MODES,
    Filter,
    Fusion,
    Mode,
    QueryPlan,
    RangeFilter,
    TermFilter,
)

__all__ = [
    "FUSIONS",
    "MAX_QUERY_CHARS",
    "MODES",
    "Filter",
    "Fusion",
    "Mode",
    "Query",
    "QueryPlan",
    "RangeFilter",
    "TermFilter",
]


def _check_field(name: str) -> str:
    if not name or any(c in name for c in ' "*?\\') or name.startswith(("_", "xlidx.passages")):
        raise ConfigError(f"invalid filter field {name!r}")
    return name


class Query:
    """Immutable builder of a :class:`QueryPlan`."""

    __slots__ = ("_plan",)

    def __init__(self, text: str, *, _plan: QueryPlan | None = None) -> None:
        if _plan is not None:
            self._plan = _plan
            return
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("the query text is empty")
        if len(text) > MAX_QUERY_CHARS:
            raise ConfigError(f"the query is longer than {MAX_QUERY_CHARS} characters")
        self._plan = QueryPlan(text=text.strip())

    def _clone(self, **changes: Any) -> Query:
        return Query("", _plan=dataclasses.replace(self._plan, **changes))

    def plan(self) -> QueryPlan:
        return self._plan

    def mode(self, mode: str) -> Query:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}: expected {', '.join(MODES)}")
        return self._clone(mode=mode)

    def k(self, size: int) -> Query:
        if not 1 <= size <= 1000:
            raise ConfigError(f"k must be between 1 and 1000, got {size}")
        return self._clone(size=size)

    def offset(self, offset: int) -> Query:
        if offset < 0:
            raise ConfigError(f"offset must be 0 or more, got {offset}")
        return self._clone(offset=offset)

    def candidates(self, n: int, ef_search: int | None = None) -> Query:
        if not 1 <= n <= 10_000:
            raise ConfigError(f"candidates must be between 1 and 10000, got {n}")
        if ef_search is not None and ef_search < 1:
            raise ConfigError(f"ef_search must be positive, got {ef_search}")
        return self._clone(candidates=n, ef_search=ef_search)

    def fusion(self, method: str, weights: Sequence[float] | None = None) -> Query:
        if method not in FUSIONS:
            raise ConfigError(f"unknown fusion {method!r}: expected {', '.join(FUSIONS)}")
        w: tuple[float, float] | None = None
        if weights is not None:
            if len(weights) != 2 or any(not math.isfinite(x) or x < 0 for x in weights):
                raise ConfigError("weights must be two non-negative numbers: BM25,kNN")
            if sum(weights) <= 0:
                raise ConfigError("at least one weight must be positive")
            w = (float(weights[0]), float(weights[1]))
        return self._clone(fusion=method, weights=w)

    def text_fields(self, *fields: str) -> Query:
        return self._clone(text_fields=tuple(_check_field(f) for f in fields))

    def query_lang(self, lang: str | None) -> Query:
        if lang is not None and not is_lang_code(lang):
            raise ConfigError(f"invalid language code {lang!r}")
        return self._clone(query_lang=lang)

    def translations(self, by_lang: Mapping[str, str]) -> Query:
        return self._clone(translations=dict(by_lang))

    def vector(self, vector: Sequence[float]) -> Query:
        return self._clone(vector=tuple(float(x) for x in vector))

    def filter(self, field_name: str, *values: Any) -> Query:
        if not values:
            raise ConfigError(f"filter on {field_name!r} needs a value")
        f = TermFilter(_check_field(field_name), tuple(values))
        return self._clone(filters=(*self._plan.filters, f))

    def range(self, field_name: str, **bounds: Any) -> Query:
        allowed = {"gte", "lte", "gt", "lt"}
        if not bounds or set(bounds) - allowed:
            raise ConfigError(f"range on {field_name!r} takes gte, lte, gt or lt")
        f = RangeFilter(_check_field(field_name), **bounds)
        return self._clone(filters=(*self._plan.filters, f))

    def langs(self, *codes: str) -> Query:
        for c in codes:
            if not is_lang_code(c):
                raise ConfigError(f"invalid language code {c!r}")
        return self._clone(langs=tuple(codes))

    def highlight(self, on: bool = True) -> Query:
        return self._clone(highlight=on)

    def source(self, *includes: str) -> Query:
        return self._clone(source_includes=tuple(includes) if includes else None)

    def balance(self, on: bool = True) -> Query:
        return self._clone(balance=on)

    def centering(self, on: bool = True) -> Query:
        """Center the query vector with its language's mean where the index is calibrated
        to (the default); off sends the model's raw vector."""
        return self._clone(centering=on)
