"""A REST request as data (pure): what ``xlidx connect`` sends, or lists with ``--dry-run``,
with every secret hidden when shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "<redacted>"
#: keys whose values are secrets, wherever they appear in a body
SECRET_KEYS = frozenset({"secret_parameters", "api_key", "Authorization", "credential"})


@dataclass(frozen=True)
class Request:
    """One HTTP request: to the cluster (``path`` from its root) or to xlidx serve (``path``
    a URL). ``action`` says what it is for (it completes "while trying to …"); ``body`` and
    ``headers`` may hold the key (see :meth:`to_json`)."""

    method: str
    path: str
    action: str
    body: Mapping[str, Any] | None = None
    to: str = "cluster"
    headers: Mapping[str, str] | None = None
    params: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as data, with every secret replaced by ``<redacted>``."""
        out: dict[str, Any] = {"to": self.to, "method": self.method, "path": self.path}
        if self.params:
            out["params"] = dict(self.params)
        if self.headers:
            out["headers"] = redact(self.headers)
        if self.body is not None:
            out["body"] = redact(self.body)
        out["action"] = self.action
        return out

    def line(self) -> str:
        return f"{self.method} {self.path}"


def redact(value: Any) -> Any:
    """``value`` with the values of :data:`SECRET_KEYS` replaced (recursively) and the
    ``Bearer`` tokens of ``Authorization`` headers hidden."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in SECRET_KEYS and isinstance(v, Mapping):
                out[k] = {kk: REDACTED for kk in v}
            elif k in SECRET_KEYS and isinstance(v, str) and "${" not in v:
                out[k] = REDACTED
            else:
                out[k] = redact(v)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


# -- names -------------------------------------------------------------------------------------
