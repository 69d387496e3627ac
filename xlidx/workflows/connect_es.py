"""``xlidx connect elasticsearch``: let an Elasticsearch cluster call ``xlidx serve`` for the
vectors of what applications write to an xlidx index, or take that back (``remove``).

:func:`connect_elasticsearch` checks that the cluster can (an inference API, which
Elasticsearch's default distribution has, under an ``enterprise`` or ``trial`` licence) and
that the service answers for the index, then creates the ``custom`` inference endpoint
``xlidx-NAME``, the vector fields, and the ingest pipeline ``xlidx-NAME-ingest`` run by
default on the index's current version (the bodies:
:mod:`xlidx.backends.elasticsearch.inference`), and records what it created in
``_meta.xlidx.integration``. Where the cluster cannot, it raises
:class:`~xlidx.errors.Unsupported` (exit code 1) before any change, naming the alternative
(``xlidx ingest --from-index SRC --index NAME --follow``).

:func:`disconnect_elasticsearch` deletes the pipeline (and the default pipeline setting) and
the endpoint, and forgets the record; what is already gone is skipped, so it can run again.

With ``dry_run`` both read the index's state (its alias and ``_meta``) and return every other
request they would send, secrets redacted, sending none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from xlidx.backends.elasticsearch import inference as inf
from xlidx.backends.requests import Request
from xlidx.config import Secret, redact_url
from xlidx.documents import DEFAULT_TEXT_FIELDS
from xlidx.errors import (
    AuthenticationFailed,
    BackendError,
    ConfigError,
    IndexNotFound,
    MappingError,
    ServiceError,
    Unsupported,
)

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.indices.manage import IndexState
    from xlidx.workflows.index import Index

__all__ = ["EsConnection", "connect_elasticsearch", "disconnect_elasticsearch"]

#: what a part became: created now, there already, changed, removed, or not there to remove
PartState = str
PROBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class EsConnection:
    """What ``connect`` (or ``remove``) did, or with ``dry_run`` would do.

    ``parts`` maps ``endpoint``, ``mapping``, ``pipeline`` and ``default_pipeline`` to
    ``created``, ``unchanged``, ``updated``, ``removed`` or ``absent`` (empty for a dry run);
    ``recorded``: ``_meta.xlidx.integration`` was written (connect) or dropped (remove);
    ``requests``: those sent after reading the index's state, or those a dry run would send.
    """

    action: str  # "connect" or "remove"
    index: str
    concrete: str | None
    endpoint: str
    pipeline: str
    serve: str | None
    dry_run: bool
    parts: dict[str, PartState] = field(default_factory=dict)
    recorded: bool = False
    requests: tuple[Request, ...] = ()

    @property
    def changed(self) -> bool:
        return any(v in ("created", "updated", "removed") for v in self.parts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "index": self.index,
            "concrete_index": self.concrete,
            "endpoint": self.endpoint,
            "pipeline": self.pipeline,
            "serve": self.serve,
            "dry_run": self.dry_run,
            "parts": dict(self.parts),
            "recorded": self.recorded,
            "requests": [r.to_json() for r in self.requests],
        }


class _Sender:
    """Sends requests to the cluster and keeps the list; :meth:`found` tells a 404."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.sent: list[Request] = []

    def __call__(self, req: Request) -> Any:
        self.sent.append(req)
        return self.backend.request(req.method, req.path, req.action, body=req.body)

    def found(self, req: Request) -> Any | None:
        """The reply of a GET, or ``None`` when the cluster answers 404."""
        try:
            return self(req)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise


def _key(api_key: Secret | str | None) -> str | None:
    return api_key.get() if isinstance(api_key, Secret) else api_key or None


def _require_elasticsearch(backend: Backend) -> None:
    if backend.engine != "elasticsearch":
        raise Unsupported(
            f"{backend.settings.display_urls} is {backend.engine or 'not Elasticsearch'}: "
            "`xlidx connect elasticsearch` sets up Elasticsearch's inference API (for "
            "OpenSearch: `xlidx connect opensearch`)"
        )


def _state(backend: Backend, name: str) -> IndexState:
    from xlidx.indices.manage import resolve

    state = resolve(backend, name)  # MappingError: a plain index, or one xlidx did not make
    if state is None:
        raise IndexNotFound(
            f"no xlidx index named {name!r} on {backend.settings.display_urls} "
            f"(create it with `xlidx index create {name}` or `xlidx ingest`)"
        )
    return state


def _shape(state: IndexState) -> tuple[int, str, tuple[str, ...]]:
    """The index's vector dimension, vector space and text fields, from its ``_meta``."""
    x = state.xlidx_meta
    dims = (x.get("embedding") or {}).get("dimension")
    if not isinstance(dims, int):
        raise MappingError(f"index {state.index!r} records no vector dimension in its _meta")
    space = str((x.get("vector") or {}).get("space_type", "cosinesimil"))
    fields = tuple(x.get("text_fields") or DEFAULT_TEXT_FIELDS)
    return dims, space, fields


def _instead(name: str) -> str:
    return (
        f"keep {name} up to date from the index your applications write to with "
        f"`xlidx ingest --from-index SRC --index {name} --follow` instead"
    )


def check_cluster(send: Callable[[Request], Any], backend: Backend, name: str) -> None:
    """Refuse (:class:`~xlidx.errors.Unsupported`, one line) unless the cluster has an
    inference API, a licence that runs it, and the ``custom`` service (its version)."""
    where = backend.settings.display_urls
    api, licence = inf.check_requests()
    try:
        send(api)
    except AuthenticationFailed:
        raise
    except BackendError as exc:
        if exc.status is None or not 400 <= exc.status < 500:
            raise
        raise Unsupported(
            f"{where} cannot call xlidx serve: it has no inference API (GET _inference/_all "
            f"answered HTTP {exc.status}; Elasticsearch's default distribution has one, the "
            f"integ-test distribution of `xlidx dev` has not); {_instead(name)}"
        ) from None
    try:
        reply = send(licence)
    except AuthenticationFailed:
        raise
    except BackendError as exc:
        if exc.status is None or not 400 <= exc.status < 500:
            raise
        reply = {}
    problem = inf.licence_problem(reply if isinstance(reply, Mapping) else {})
    if problem:
        raise Unsupported(
            f"{where} cannot call xlidx serve: {problem}, and Elasticsearch runs the inference "
            f"API under an enterprise or trial licence only; {_instead(name)}"
        )
    version = backend.capabilities().version
    if not inf.has_custom_service(version):
        raise Unsupported(
            f"{where} cannot call xlidx serve: Elasticsearch {version or '(version unknown)'} "
            f"has no `custom` inference service (8.19 and 9.1 added it); {_instead(name)}"
        )


def probe_serve(req: Request, dims: int, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Send ``req`` (:func:`~xlidx.backends.elasticsearch.inference.serve_probe`) to the
    service: :class:`~xlidx.errors.ServiceError` (one line) unless it answers with vectors
    of the index's ``dims``."""
    import httpx

    shown = redact_url(req.path.removesuffix("/v1/embeddings"))
    try:
        r = httpx.post(req.path, json=dict(req.body or {}), headers=dict(req.headers or {}),
                       timeout=timeout)  # fmt: skip
    except httpx.HTTPError as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ServiceError(
            f"cannot reach xlidx serve at {shown}: {detail} (the cluster calls this URL too: "
            "give one that both this machine and the cluster reach)"
        ) from None
    if r.status_code >= 400:
        raise ServiceError(
            f"xlidx serve at {shown} answered {r.status_code}: {_message(r)}", status=r.status_code
        )
    try:
        got = len(r.json()["data"][0]["embedding"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise ServiceError(
            f"{shown} did not answer as xlidx serve does: {r.text[:120]!r}"
        ) from None
    if got != dims:
        raise MappingError(
            f"xlidx serve at {shown} gives {got}-d vectors for {req.body and req.body['model']}, "
            f"the index holds {dims}-d ones: is it serving another cluster?"
        )


def _message(r: Any) -> str:
    try:
        err = r.json().get("error")
    except (ValueError, AttributeError):
        err = r.text[:200]
    if isinstance(err, dict):
        err = err.get("message")
    return " ".join(str(err).split())


def _record(name: str, serve: str, fields: tuple[str, ...], now: datetime | None) -> dict[str, Any]:
    """``_meta.xlidx.integration``: what was set up (never the key)."""
    created = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {
        "kind": "elasticsearch-inference",
        "endpoint": inf.endpoint_id(name),
        "pipeline": inf.pipeline_id(name),
        "default_pipeline": True,
        "serve": redact_url(serve),
        "model": inf.serve_model(name),
        "input_type": {
            "translation": dict(inf.INPUT_TYPE_TRANSLATION),
            "default": inf.DEFAULT_INPUT_TYPE,
        },
        "fields": {f: inf.output_field(f) for f in fields},
        "created_at": created,
    }


def connect_elasticsearch(
    index: Index,
    serve_url: str,
    *,
    api_key: Secret | str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    probe_timeout: float = PROBE_TIMEOUT,
) -> EsConnection:
    """Make the cluster call the ``xlidx serve`` at ``serve_url`` (which takes ``api_key``)
    for the vectors of what is written to ``index``; see the module docs. Idempotent: what
    exists as it should is left alone, and ``_meta`` is written only when something was made.

    Raises :class:`~xlidx.errors.IndexNotFound` or :class:`~xlidx.errors.MappingError` for
    an index that is missing or not xlidx's, :class:`~xlidx.errors.Unsupported` where the
    cluster cannot call the service (not Elasticsearch, no inference API, its licence, its
    version), :class:`~xlidx.errors.ServiceError` when the service does not answer.
    """
    from xlidx.indices.manage import resolve, update_meta

    backend, name = index.backend, index.name
    _require_elasticsearch(backend)
    state = _state(backend, name)
    dims, space, fields = _shape(state)
    key = _key(api_key)
    concrete, pid = state.index, inf.pipeline_id(name)
    endpoint = inf.endpoint_body(name, serve_url, api_key=key, dimensions=dims, similarity=space)
    properties = inf.mapping_properties(fields, dims, space)
    pipeline = inf.pipeline_body(name, fields)
    probe = inf.serve_probe(name, serve_url, key)
    record = _record(name, serve_url, fields, now)
    result = EsConnection(
        "connect", name, concrete, inf.endpoint_id(name), pid, redact_url(serve_url), dry_run
    )
    if dry_run:
        meta = {**state.meta, "xlidx": {**state.xlidx_meta, "integration": record}}
        plan = [
            *inf.check_requests(), probe, inf.get_mapping(concrete), inf.get_settings(concrete),
            inf.get_endpoint(name), inf.put_endpoint(name, endpoint),
            inf.put_mapping(concrete, properties), inf.get_pipeline(name),
            inf.put_pipeline(name, pipeline), inf.put_default_pipeline(concrete, pid),
            inf.put_meta(concrete, meta, "record the integration in the index's _meta"),
        ]  # fmt: skip
        return _with(result, requests=tuple(plan))

    send = _Sender(backend)
    check_cluster(send, backend, name)
    probe_serve(probe, dims, timeout=probe_timeout)
    send.sent.append(probe)
    mapping = send(inf.get_mapping(concrete))
    settings = send(inf.get_settings(concrete))
    default = _default_pipeline(settings, concrete)
    if default not in (None, "_none", pid):
        raise ConfigError(
            f"{concrete} already runs the ingest pipeline {default!r} by default: make it call "
            f"{pid} (a `pipeline` processor), or unset it, then run this again"
        )
    found = send.found(inf.get_endpoint(name))
    parts: dict[str, PartState] = {}
    if found is None:
        send(inf.put_endpoint(name, endpoint))
        parts["endpoint"] = "created"
    elif any(inf.same_endpoint(e, endpoint) for e in (found or {}).get("endpoints", [])):
        parts["endpoint"] = "unchanged"
    else:
        raise ConfigError(
            f"the inference endpoint {inf.endpoint_id(name)} exists with other settings (another "
            f"service URL?): `xlidx connect elasticsearch --index {name} --remove` first"
        )
    props = ((mapping or {}).get(concrete) or {}).get("mappings", {}).get("properties", {})
    if inf.has_properties(props, properties):
        parts["mapping"] = "unchanged"
    else:
        send(inf.put_mapping(concrete, properties))
        parts["mapping"] = "created"
    have = send.found(inf.get_pipeline(name))
    if have is not None and _same_pipeline(have.get(pid), pipeline):
        parts["pipeline"] = "unchanged"
    else:
        send(inf.put_pipeline(name, pipeline))
        parts["pipeline"] = "created" if have is None else "updated"
    if default == pid:
        parts["default_pipeline"] = "unchanged"
    else:
        send(inf.put_default_pipeline(concrete, pid))
        parts["default_pipeline"] = "created"
    recorded = False
    if any(v in ("created", "updated") for v in parts.values()):
        fresh = resolve(backend, name) or state  # _meta as it is now (a calibration meanwhile)
        x = {**fresh.xlidx_meta, "integration": record}
        update_meta(backend, fresh, x)
        send.sent.append(inf.put_meta(fresh.index, {**fresh.meta, "xlidx": x},
                                      "record the integration in the index's _meta"))  # fmt: skip
        recorded = True
    return _with(result, parts=parts, recorded=recorded, requests=tuple(send.sent))


def disconnect_elasticsearch(index: Index, *, dry_run: bool = False) -> EsConnection:
    """Undo :func:`connect_elasticsearch` on ``index``: unset the default pipeline, delete
    the pipeline and the endpoint, drop ``_meta.xlidx.integration``. What is not there is
    skipped (``absent``), so it can run again; an index that no longer exists only has its
    pipeline and endpoint deleted. The vector fields stay (a mapping keeps its fields)."""
    from xlidx.indices.manage import resolve, update_meta

    backend, name = index.backend, index.name
    _require_elasticsearch(backend)
    state = resolve(backend, name)  # None: the index is gone, its endpoint may not be
    concrete = state.index if state is not None else None
    pid = inf.pipeline_id(name)
    x = state.xlidx_meta if state is not None else {}
    serve = (x.get("integration") or {}).get("serve")
    result = EsConnection("remove", name, concrete, inf.endpoint_id(name), pid, serve, dry_run)
    if dry_run:
        plan = [inf.check_requests()[0]]
        if concrete is not None:
            plan += [inf.get_settings(concrete), inf.put_default_pipeline(concrete, None)]
        plan += [inf.get_pipeline(name), inf.delete_pipeline(name), inf.get_endpoint(name),
                 inf.delete_endpoint(name)]  # fmt: skip
        if concrete is not None and "integration" in x:
            meta = {**(state.meta if state else {}),
                    "xlidx": {k: v for k, v in x.items() if k != "integration"}}  # fmt: skip
            plan.append(inf.put_meta(concrete, meta, "drop the integration from the _meta"))
        return _with(result, requests=tuple(plan))

    send = _Sender(backend)
    try:
        send(inf.check_requests()[0])
        has_api = True
    except AuthenticationFailed:
        raise
    except BackendError as exc:
        if exc.status is None or not 400 <= exc.status < 500:
            raise
        has_api = False  # no inference API: no endpoint (nor inference processor) can exist
    parts: dict[str, PartState] = {}
    if concrete is not None:
        if _default_pipeline(send(inf.get_settings(concrete)), concrete) == pid:
            send(inf.put_default_pipeline(concrete, None))
            parts["default_pipeline"] = "removed"
        else:
            parts["default_pipeline"] = "absent"
    parts["pipeline"] = _delete(send, inf.get_pipeline(name), inf.delete_pipeline(name))
    if has_api:
        parts["endpoint"] = _delete(send, inf.get_endpoint(name), inf.delete_endpoint(name))
    else:
        parts["endpoint"] = "absent"
    recorded = False
    fresh = resolve(backend, name) if state is not None else None
    if fresh is not None and "integration" in fresh.xlidx_meta:
        kept = {k: v for k, v in fresh.xlidx_meta.items() if k != "integration"}
        update_meta(backend, fresh, kept)
        send.sent.append(inf.put_meta(fresh.index, {**fresh.meta, "xlidx": kept},
                                      "drop the integration from the _meta"))  # fmt: skip
        recorded = True
    return _with(result, parts=parts, recorded=recorded, requests=tuple(send.sent))


def _delete(send: _Sender, get: Request, delete: Request) -> PartState:
    # Elasticsearch answers 200 to deleting a pipeline that does not exist: look first
    if send.found(get) is None:
        return "absent"
    try:
        send(delete)
    except BackendError as exc:
        if exc.status == 404:
            return "absent"
        raise
    return "removed"


def _default_pipeline(settings: Any, concrete: str) -> str | None:
    found = ((settings or {}).get(concrete) or {}).get("settings", {})
    value = (found.get("index") or {}).get("default_pipeline")
    if value is None:
        value = found.get("index.default_pipeline")
    return str(value) if value is not None else None


def _same_pipeline(have: Any, want: Mapping[str, Any]) -> bool:
    if not isinstance(have, Mapping):
        return False
    return all(have.get(k) == want[k] for k in ("processors", "_meta"))


def _with(result: EsConnection, **changes: Any) -> EsConnection:
    from dataclasses import replace

    return replace(result, **changes)
