"""The options of one query, as ``xlidx query`` takes them and ``xlidx serve``'s
``POST /indices/{name}/search`` takes them as JSON (pure): one field list for both, turned
into a :class:`~xlidx.query.plan.Query` by :meth:`QueryOptions.to_query`, which checks every
value (:class:`~xlidx.errors.ConfigError`, one line)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from xlidx.errors import ConfigError
from xlidx.query.plan import Query

_RANGES = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}


def parse_filter(spec: str) -> tuple[str, str, str]:
    """``field=value`` → (field, "=", value); also >=, <=, >, < (pure)."""
    for op in (">=", "<=", "=", ">", "<"):
        if op in spec:
            name, _, value = spec.partition(op)
            if name.strip() and value.strip():
                return name.strip(), op, value.strip()
    raise ConfigError(f"invalid --filter {spec!r}: use FIELD=VALUE or FIELD>=N, FIELD<=N, …")


def coerce(value: str) -> Any:
    """A filter value as a number where it reads as one."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def parse_weights(weights: str | list[float] | None) -> list[float] | None:
    """``"0.3,0.7"`` (or ``[0.3, 0.7]``) → ``[0.3, 0.7]``."""
    if weights is None or isinstance(weights, list):
        return weights
    try:
        return [float(w) for w in weights.split(",")]
    except ValueError:
        raise ConfigError(f"invalid --weights {weights!r}: use BM25,KNN like 0.3,0.7") from None


@dataclass
class QueryOptions:
    """What ``xlidx query`` takes, flag by flag (``langs`` is ``--lang``, ``filters`` are
    ``--filter`` specs, ``source`` the fields to return). The defaults are those of
    ``xlidx query --json``: no highlighting (the table turns it on)."""

    #: pydantic (``xlidx serve``) refuses unknown keys in a JSON body
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    text: str
    mode: str = "hybrid"
    k: int = 10
    offset: int = 0
    langs: list[str] = field(default_factory=list)
    query_lang: str | None = None
    filters: list[str] = field(default_factory=list)
    translate_query: bool = False
    fusion: str = "minmax"
    weights: str | list[float] | None = None
    candidates: int = 100
    ef_search: int | None = None
    balance: bool = False
    highlight: bool = False
    centering: bool = True
    source: list[str] | None = None
    explain: bool = False

    def to_query(self) -> Query:
        """The :class:`~xlidx.query.plan.Query` these options describe (checked)."""
        q = Query(self.text).mode(self.mode).k(self.k).offset(self.offset)
        q = q.candidates(self.candidates, self.ef_search)
        weights = parse_weights(self.weights)
        q = q.fusion(self.fusion, weights) if weights is not None else q.fusion(self.fusion)
        if self.langs:
            q = q.langs(*self.langs)
        if self.query_lang:
            q = q.query_lang(self.query_lang)
        for spec in self.filters:
            name, op, value = parse_filter(spec)
            if op == "=":
                q = q.filter(name, *(coerce(v) for v in value.split("|")))
            else:
                q = q.range(name, **{_RANGES[op]: coerce(value)})
        if self.balance:
            q = q.balance()
        q = q.highlight(self.highlight).centering(self.centering)
        if self.source:
            q = q.source(*self.source)
        return q

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
