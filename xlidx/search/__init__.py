"""Running a query plan against an xlidx index: index facts, query encoding, execution, results.

* :mod:`~xlidx.search.facts`: what the searcher knows of the index (state, language reach).
* :mod:`~xlidx.search.encode`: the query's language, translations and vector.
* :mod:`~xlidx.search.searcher`: one request (or two, fused on the client) per query.
* :mod:`~xlidx.search.results`: hits and results as returned to callers.
"""

from __future__ import annotations

from xlidx.search.results import Hit, QueryResult
from xlidx.search.searcher import Searcher

__all__ = ["Hit", "QueryResult", "Searcher"]
