"""A client of a running ``xlidx serve`` (``xlidx query --serve``): the same query options
as JSON, the same :class:`~xlidx.search.results.QueryResult` back, the same retries while the
service (or its cluster) cannot answer for a moment."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from xlidx.errors import ServiceError
from xlidx.search.retry import DEFAULT_QUERY_RETRY_FOR, with_retries

if TYPE_CHECKING:
    from xlidx.config import Secret
    from xlidx.query.options import QueryOptions
    from xlidx.search.results import QueryResult


class ServeClient:
    def __init__(self, url: str, *, api_key: Secret | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key.get()}"} if api_key else {}
        self.timeout = timeout

    def search(
        self, index: str, options: QueryOptions, *, retry_for: float = DEFAULT_QUERY_RETRY_FOR
    ) -> QueryResult:
        """``options`` on ``index``, answered by the service. It is asked for the explain
        form, which carries everything the table shows; ``options.explain`` decides what is
        printed."""
        from xlidx.search.results import QueryResult

        body = replace(options, explain=True).to_json()
        answer = with_retries(lambda: self.post(f"/indices/{index}/search", body), budget=retry_for)
        return QueryResult.from_json(answer)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """The JSON answer of ``POST path``; :class:`~xlidx.errors.ServiceError` (one line)
        when the service cannot be reached or answers with an error."""
        try:
            r = httpx.post(self.url + path, json=body, headers=self._headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach xlidx serve at {self.url}: {exc}") from None
        if r.status_code >= 400:
            raise ServiceError(
                f"xlidx serve answered {r.status_code}: {_message(r)}", status=r.status_code
            )
        return r.json()


def _message(r: httpx.Response) -> str:
    try:
        err = r.json().get("error")
    except (ValueError, AttributeError):
        err = r.text[:200]  # a proxy's page, say: one line of it
    if isinstance(err, dict):
        err = err.get("message")
    return " ".join(str(err).split())
