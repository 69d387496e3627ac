"""One query against an xlidx index, tried again while the cluster cannot answer it for a
moment (a node restarting or lost): :func:`~xlidx.search.retry.with_retries` around the
index's :class:`~xlidx.search.Searcher`, which is made inside the retried call, because
opening the backend (asking the cluster which engine it is) may itself fail then."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from xlidx.search.retry import DEFAULT_QUERY_RETRY_FOR

if TYPE_CHECKING:
    from xlidx.errors import BackendError
    from xlidx.query.plan import Query
    from xlidx.search import QueryResult, Searcher

OnRetry = Callable[[int, float, "BackendError"], None]


def search(
    searcher: Callable[[], Searcher],
    query: Query | str,
    *,
    translate: bool = False,
    explain: bool = False,
    retry_for: float = DEFAULT_QUERY_RETRY_FOR,
    on_retry: OnRetry | None = None,
) -> QueryResult:
    """Run ``query`` (a :class:`~xlidx.query.plan.Query`, or its text) with the searcher
    ``searcher()`` gives, for up to ``retry_for`` seconds; ``on_retry(attempt, wait, error)``
    hears about each retry. Raises :class:`~xlidx.search.retry.QueryUnavailable` when the
    budget is spent."""
    from xlidx.query.plan import Query
    from xlidx.search.retry import with_retries

    q = query if isinstance(query, Query) else Query(query)

    def run() -> QueryResult:
        return searcher().search(q, translate=translate, explain=explain)

    if on_retry is None:
        return with_retries(run, budget=retry_for)
    return with_retries(run, budget=retry_for, on_retry=on_retry)
