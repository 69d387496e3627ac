"""``xlidx connect opensearch``: the cluster calls ``xlidx serve`` for the documents that
applications write, and for their queries' vectors.

:func:`connect` checks the service (reachable, the key accepted, the index seen), then sets
up, in this order, and takes back what it made when a step fails:

1. the service's URL in ml-commons' trusted endpoints (appended), and private addresses
   allowed only when the URL needs them (with a warning: that is how SSRF happens);
2. one connector and one deployed remote model per role (:data:`~xlidx.backends.opensearch.
   ml.ROLES`), each checked with a smoke ``_predict``;
3. the ingest pipeline (checked with ``_simulate``) and the search pipeline, set as the
   current version's ``index.default_pipeline`` and ``index.search.default_pipeline``;
4. what it made, recorded in ``_meta.xlidx.integration`` (``migrate`` carries the
   pipelines to the new version; :func:`disconnect` reads it back).

Connecting again replaces the models and pipelines in place (the pipelines are swapped
before the old models go), so a connected index is never left without its pipeline.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from xlidx.backends.requests import Request
from xlidx.errors import (
    BackendError,
    ConfigError,
    IndexNotFound,
    ServiceError,
    Unsupported,
    XlidxError,
)
from xlidx.spec import parse_versioned

if TYPE_CHECKING:
    from xlidx.backends.base import Backend
    from xlidx.indices.manage import IndexState
    from xlidx.workflows.index import Index

TRUSTED = "plugins.ml_commons.trusted_connector_endpoints_regex"
PRIVATE_IP = "plugins.ml_commons.connector.private_ip_enabled"
DEPLOY_WAIT = 60.0  # seconds for a remote model to be deployed

Log = Callable[[str], None]


@dataclass
class Connected:
    """What :func:`connect` or :func:`disconnect` did (or, dry, would do)."""

    index: str
    version: str
    serve_url: str | None
    dry_run: bool = False
    removed: bool = False
    models: dict[str, str] = field(default_factory=dict)  # role -> model id
    connectors: dict[str, str] = field(default_factory=dict)
    ingest_pipeline: str | None = None
    search_pipeline: str | None = None
    weights: tuple[float, float] | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # cluster settings changed
    warnings: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)  # dry run: what would be sent

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "version": self.version,
            "serve_url": self.serve_url,
            "dry_run": self.dry_run,
            "removed": self.removed,
            "models": dict(self.models),
            "connectors": dict(self.connectors),
            "ingest_pipeline": self.ingest_pipeline,
            "search_pipeline": self.search_pipeline,
            "weights": list(self.weights) if self.weights else None,
            "settings": dict(self.settings),
            "warnings": list(self.warnings),
        }
        if self.dry_run:
            out["requests"] = [r.to_json() for r in self.requests]
        return out


class _Cluster:
    """The requests of one run: sent, or (dry) only listed; and what to take back."""

    def __init__(self, backend: Backend, dry_run: bool, log: Log) -> None:
        self.backend, self.dry_run, self.log = backend, dry_run, log
        self.sent: list[Request] = []
        self.undo: list[Callable[[], None]] = []

    def send(self, req: Request, *, fake: Any = None) -> Any:
        self.sent.append(req)
        if self.dry_run:
            return fake
        return self.backend.request(
            req.method, req.path, req.action, body=req.body, params=req.params
        )

    def read(self, method: str, path: str, action: str, **kw: Any) -> Any:
        return self.backend.request(method, path, action, **kw)

    def rollback(self) -> None:
        for fn in reversed(self.undo):
            try:
                fn()
            except XlidxError as exc:  # keep taking back the rest
                self.log(f"could not take back a step: {exc}")
        self.undo.clear()


def connect(
    index: Index,
    serve_url: str,
    *,
    api_key: str,
    translate_to: Sequence[str] = (),
    fusion: str = "minmax",
    dry_run: bool = False,
    log: Log = lambda _m: None,
) -> Connected:
    """Make the cluster call ``xlidx serve`` at ``serve_url`` for ``index`` (see the module
    docs). ``api_key``: the key the service takes (it becomes each connector's credential).
    ``translate_to``: languages every document is translated into (added to what the
    index records)."""
    from xlidx.backends.opensearch import ml

    backend = index.backend
    state = _check_cluster(backend, index.name)
    url = _check_url(serve_url)
    if not api_key:
        raise ConfigError("connect needs the service's API key (--api-key, or XLIDX_SERVE_API_KEY)")
    log(f"checking xlidx serve at {url}")
    _check_service(url, api_key, index.name)
    run = _Cluster(backend, dry_run, log)
    result = Connected(index.name, state.index, url, dry_run=dry_run)
    old = dict(state.xlidx_meta.get("integration") or {})
    try:
        _trust(run, url, result, log)
        for role in ml.ROLES:
            _model(run, index.name, role, url, api_key, result, log)
        _prepare_index(run, index, state, translate_to)
        _pipelines(run, index, state, result, fusion, log)
        _record(run, index, result)
    except BaseException:
        if not dry_run:
            log("taking back what this run made")
            run.rollback()
        raise
    if not dry_run and old:
        _drop_models(run, old, keep=set(result.models.values()), log=log)
    index._refresh_searchers()
    result.requests = run.sent
    return result


def disconnect(index: Index, *, dry_run: bool = False, log: Log = lambda _m: None) -> Connected:
    """Take away everything :func:`connect` made for ``index`` (what ``_meta`` records);
    nothing recorded is nothing to do."""
    from xlidx.indices.manage import update_meta, version_state

    backend = index.backend
    state = _check_cluster(backend, index.name)
    rec = dict(state.xlidx_meta.get("integration") or {})
    run = _Cluster(backend, dry_run, log)
    result = Connected(index.name, state.index, rec.get("serve_url"), dry_run=dry_run)
    result.removed = bool(rec)
    result.models = dict(rec.get("models") or {})
    result.connectors = dict(rec.get("connectors") or {})
    if not rec:
        return result
    versions = _versions_using(run, index.name, rec)  # a rollback must not find them either
    settings = {"index.default_pipeline": None, "index.search.default_pipeline": None}
    for version in versions:
        run.send(Request("PUT", f"/{version}/_settings", "unset the pipelines", settings))
    for kind, name in (
        ("_ingest", rec.get("ingest_pipeline")),
        ("_search", rec.get("search_pipeline")),
    ):
        if name:
            _delete(run, f"/{kind}/pipeline/{name}", f"delete pipeline {name}")
    _drop_models(run, rec, keep=set(), log=log)
    others = _other_integrations(run, index.name)
    pattern = rec.get("trusted_pattern")
    in_use = any(o.get("trusted_pattern") == pattern for o in others)
    if pattern and rec.get("added_pattern") and not in_use:
        current = _trusted_setting(_settings(run))[0]
        if pattern in current:
            kept: list[str] | None = [p for p in current if p != pattern]
            others_added = any(o.get("added_pattern") for o in others)
            if rec.get("trusted_were_defaults") and not others_added:
                kept = None  # back to ml-commons' own defaults, the setting unset
            run.send(_setting(TRUSTED, kept, "remove the service from the trusted endpoints"))
            result.settings[TRUSTED] = kept
    private_in_use = any(needs_private_ip(str(o.get("serve_url") or "")) for o in others)
    if rec.get("enabled_private_ip") and not private_in_use:
        run.send(_setting(PRIVATE_IP, None, "reset private addresses for connectors"))
        result.settings[PRIVATE_IP] = None
    if not dry_run:
        for version in versions:
            vstate = version_state(backend, version)
            x = {k: v for k, v in vstate.xlidx_meta.items() if k != "integration"}
            update_meta(backend, vstate, x)
        index._refresh_searchers()
    result.requests = run.sent
    return result


def _integrations(run: _Cluster) -> dict[str, dict[str, Any]]:
    """``_meta.xlidx.integration`` of every index that has one, by concrete index."""
    got = run.read(
        "GET", "/_all/_mapping", "read the integrations of the cluster's indices",
        params={"filter_path": "*.mappings._meta.xlidx.integration"},
    )  # fmt: skip
    return {
        name: dict(v["mappings"]["_meta"]["xlidx"]["integration"])
        for name, v in (got or {}).items()
    }


def _versions_using(run: _Cluster, alias: str, rec: Mapping[str, Any]) -> list[str]:
    """The versions of ``alias`` that record the integration ``rec`` (the current one, and
    those a migration left for rollback)."""
    return sorted(
        name
        for name, other in _integrations(run).items()
        if (parse_versioned(name) or ("",))[0] == alias
        and other.get("ingest_pipeline") == rec.get("ingest_pipeline")
    )


def _other_integrations(run: _Cluster, alias: str) -> list[dict[str, Any]]:
    """The integrations of the other indices (what they still need of the settings)."""
    return [
        other
        for name, other in _integrations(run).items()
        if (parse_versioned(name) or ("",))[0] != alias
    ]


# -- the checks --------------------------------------------------------------------------------
def _check_cluster(backend: Backend, name: str) -> IndexState:
    from xlidx.indices.manage import resolve

    if backend.engine != "opensearch":
        raise Unsupported(
            "`xlidx connect opensearch` needs OpenSearch; for Elasticsearch use "
            "`xlidx connect elasticsearch`"
        )
    try:
        backend.request("GET", "/_plugins/_ml/stats", "read ml-commons' stats")
    except BackendError as exc:
        if exc.status in (400, 404, 405):
            raise Unsupported(
                "this cluster has no ml-commons plugin (opensearch-ml), so it cannot call "
                "xlidx serve: install it (`xlidx dev up --with-ml` on the dev node), or keep "
                "the index enriched with `xlidx ingest --from-index SRC --index NAME --follow`"
            ) from None
        raise
    state = resolve(backend, name)
    if state is None:
        raise IndexNotFound(f"no xlidx index {name!r}: create it with `xlidx ingest` first")
    return state


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--serve {url!r} is not an http(s) URL")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"--serve {url!r}: give the service's base URL, with no path")
    return url.rstrip("/")


def _check_service(url: str, api_key: str, index: str) -> None:
    """The service answers, takes the key, and sees the index (on the same cluster)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        res = httpx.get(f"{url}/indices/{index}", headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise ServiceError(f"xlidx serve at {url} cannot be reached: {exc}") from None
    if res.status_code == 401:
        raise ServiceError(f"xlidx serve at {url} refused the API key", status=401)
    if res.status_code == 404:
        raise ServiceError(
            f"xlidx serve at {url} does not see index {index!r}: is it connected to this cluster?",
            status=404,
        )
    if res.status_code != 200:
        raise ServiceError(
            f"xlidx serve at {url} answered HTTP {res.status_code}", status=res.status_code
        )


def needs_private_ip(url: str) -> bool:
    """Whether ml-commons must be allowed to call private addresses for ``url``: its host
    is, or resolves to, a loopback, private or link-local address."""
    host = urlsplit(url).hostname or ""
    try:
        addrs = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addrs = {ipaddress.ip_address(a[4][0]) for a in socket.getaddrinfo(host, None)}
        except OSError:
            return False
    return any(a.is_private or a.is_loopback or a.is_link_local for a in addrs)


# -- the steps ---------------------------------------------------------------------------------
def _settings(run: _Cluster) -> dict[str, Any]:
    """The cluster's settings, defaults included, flat (one read for every check)."""
    got: dict[str, Any] = run.read(
        "GET", "/_cluster/settings", "read the ml-commons settings",
        params={"include_defaults": "true", "flat_settings": "true"},
    )  # fmt: skip
    return got


def _trusted_setting(got: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The trusted endpoints in force (of :func:`_settings`), and whether they are
    ml-commons' defaults (the setting unset: taking the service back out then unsets it)."""
    for part in ("transient", "persistent", "defaults"):
        flat = got.get(part, {})
        found = [v for k, v in flat.items() if k == TRUSTED or k.startswith(TRUSTED + ".")]
        if TRUSTED in flat:
            value = flat[TRUSTED]
            return (list(value) if isinstance(value, list) else [str(value)]), part == "defaults"
        if found:
            return [str(v) for v in found], part == "defaults"
    return [], True


def _private_ip_enabled(got: Mapping[str, Any]) -> bool:
    for part in ("transient", "persistent", "defaults"):
        if PRIVATE_IP in got.get(part, {}):
            return str(got[part][PRIVATE_IP]).lower() == "true"
    return False


def _trust(run: _Cluster, url: str, result: Connected, log: Log) -> None:
    import re

    from xlidx.backends.opensearch import ml

    pattern = ml.endpoint_pattern(url)
    got = _settings(run)
    current, defaults = _trusted_setting(got)
    probe = f"{url}/v1/embeddings"
    result.settings["trusted_pattern"] = pattern
    if not any(re.fullmatch(p, probe) for p in current):
        log(f"adding {pattern} to {TRUSTED}")
        new = [*current, pattern]
        run.send(_setting(TRUSTED, new, "trust the service's URL"))
        run.undo.append(lambda: _set(run, TRUSTED, None if defaults else current))
        result.settings[TRUSTED] = new
        result.settings["added_pattern"] = True
        result.settings["trusted_were_defaults"] = defaults
    if needs_private_ip(url) and not _private_ip_enabled(got):
        result.warnings.append(
            f"{url} is a private address: {PRIVATE_IP} is now true, so every connector on "
            "this cluster may call private addresses (the way SSRF happens); expose the "
            "service on an address the cluster reaches publicly to avoid it"
        )
        run.send(_setting(PRIVATE_IP, True, "allow connectors to private addresses"))
        run.undo.append(lambda: _set(run, PRIVATE_IP, None))
        result.settings[PRIVATE_IP] = True
        result.settings["enabled_private_ip"] = True


def _setting(key: str, value: Any, action: str) -> Request:
    return Request("PUT", "/_cluster/settings", action, {"persistent": {key: value}})


def _set(run: _Cluster, key: str, value: Any) -> None:
    req = _setting(key, value, f"restore {key}")
    run.backend.request(req.method, req.path, req.action, body=req.body)


def _delete(run: _Cluster, path: str, action: str) -> None:
    try:
        run.send(Request("DELETE", path, action))
    except BackendError as exc:
        if exc.status != 404:
            raise


def _model(
    run: _Cluster, index: str, role: str, url: str, key: str, result: Connected, log: Log
) -> None:
    from xlidx.backends.opensearch import ml

    log(f"creating the {role} connector and model")
    body = ml.connector_body(index, role, url, key)
    got = run.send(
        Request("POST", "/_plugins/_ml/connectors/_create", f"create the {role} connector", body),
        fake={"connector_id": f"<{role} connector>"},
    )
    cid = str(got["connector_id"])
    if not run.dry_run:
        run.undo.append(
            lambda: _delete(run, f"/_plugins/_ml/connectors/{cid}", "delete a connector")
        )
    got = run.send(
        Request("POST", "/_plugins/_ml/models/_register", f"register the {role} model",
                ml.model_body(index, role, cid), params={"deploy": "true"}),
        fake={"model_id": f"<{role} model>"},
    )  # fmt: skip
    mid = str(got["model_id"])
    if not run.dry_run:
        run.undo.append(lambda: _undeploy_delete(run, mid))
        _wait_deployed(run, mid, role)
        res = run.read(
            "POST", f"/_plugins/_ml/models/{mid}/_predict", f"check the {role} model",
            body=ml.smoke_input(role),
        )  # fmt: skip
        _check_smoke(role, res)
    result.connectors[role], result.models[role] = cid, mid


def _wait_deployed(run: _Cluster, mid: str, role: str) -> None:
    deadline = time.monotonic() + DEPLOY_WAIT
    while True:
        got = run.read("GET", f"/_plugins/_ml/models/{mid}", f"read the {role} model")
        state = got.get("model_state")
        if state == "DEPLOYED":
            return
        if state == "DEPLOY_FAILED" or time.monotonic() > deadline:
            raise BackendError(
                f"the {role} model was not deployed (state {state}): does the cluster let "
                "models run on its data nodes (plugins.ml_commons.only_run_on_ml_node)?"
            )
        time.sleep(0.5)


def _check_smoke(role: str, res: Mapping[str, Any]) -> None:
    try:
        out = res["inference_results"][0]
        if int(out.get("status_code", 200)) >= 400:
            raise ValueError(out)
        first = out["output"][0]
        ok = bool(first.get("data") or first.get("dataAsMap"))
    except (KeyError, IndexError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ServiceError(f"the {role} model's smoke test got no answer from the service")


def _undeploy_delete(run: _Cluster, mid: str) -> None:
    try:
        run.send(Request("POST", f"/_plugins/_ml/models/{mid}/_undeploy", "undeploy a model"))
    except BackendError as exc:
        if exc.status != 404:
            raise
    _delete(run, f"/_plugins/_ml/models/{mid}", "delete a model")


def _drop_models(run: _Cluster, rec: Mapping[str, Any], *, keep: set[str], log: Log) -> None:
    for role, mid in dict(rec.get("models") or {}).items():
        if mid not in keep:
            log(f"removing the {role} model {mid}")
            _undeploy_delete(run, str(mid))
    for role, cid in dict(rec.get("connectors") or {}).items():
        try:
            _delete(run, f"/_plugins/_ml/connectors/{cid}", f"delete the {role} connector")
        except BackendError as exc:
            # ml-commons 2.19 finds "models still using this connector" with a loose match
            # on ids, so a connector whose model is gone can be refused while models with
            # ids made at about the same time exist (the new ones of a reconnect): it is
            # left, unused, and said
            if exc.status != 409:
                raise
            log(f"left the {role} connector {cid}: ml-commons says models still use it")


def _prepare_index(
    run: _Cluster, index: Index, state: IndexState, translate_to: Sequence[str]
) -> None:
    """The mapping of ``xlidx.pending``, and the translation targets the service reads."""
    from xlidx.backends._dsl import PENDING_MAPPING
    from xlidx.indices.manage import update_meta
    from xlidx.pipeline.detect import parse_languages

    run.send(
        Request(
            "PUT", f"/{state.index}/_mapping", "map xlidx.pending", {"properties": PENDING_MAPPING}
        )
    )
    targets = parse_languages(tuple(translate_to))
    recorded = list(state.xlidx_meta.get("translate_to") or [])
    new = sorted(set(recorded) | set(targets))
    if new != recorded and not run.dry_run:
        update_meta(index.backend, state, {**state.xlidx_meta, "translate_to": new})


def _weights(index: Index) -> tuple[float, float]:
    """The weights ``xlidx query`` gives a query in the index's main language: BM25's by the
    share of documents with text in it (every document, where they are all translated into
    one language, or while the index is empty)."""
    from xlidx.query.hybrid import default_weights

    facts = index.searcher().facts
    x = facts.state().xlidx_meta
    targets = list(x.get("translate_to") or [])
    counts = facts.languages()
    cal = index.searcher().encoder.calibration()
    centered = bool(cal is not None and cal.centers)
    if targets or not counts:
        return default_weights(1.0, centered=centered)
    main = max(counts, key=lambda lang: counts[lang])
    return default_weights(facts.reach(frozenset({main})), centered=centered)


def _pipelines(
    run: _Cluster, index: Index, state: IndexState, result: Connected, fusion: str, log: Log
) -> None:
    from xlidx.backends.opensearch import ml, query

    ingest = ml.ingest_pipeline_name(index.name)
    search = ml.search_pipeline_name(index.name)
    log(f"creating the ingest pipeline {ingest}")
    body = ml.ingest_pipeline_body(index.name, result.models["document"])
    if not run.dry_run:
        _simulate(run, body, index)  # before it replaces a pipeline writes go through now
    _put_pipeline(run, "_ingest", ingest, body)
    weights = (0.25, 0.75) if run.dry_run else _weights(index)
    _put_pipeline(run, "_search", search, query.pipeline_body(fusion, weights, 60))
    settings = {"index.default_pipeline": ingest, "index.search.default_pipeline": search}
    run.send(Request("PUT", f"/{state.index}/_settings", "set the pipelines", settings))
    result.ingest_pipeline, result.search_pipeline, result.weights = ingest, search, weights


def _put_pipeline(run: _Cluster, kind: str, name: str, body: Mapping[str, Any]) -> None:
    """Create or replace a pipeline; taking it back restores the one it replaced (a
    reconnect that fails leaves the index's pipeline as it was, never missing)."""
    path = f"/{kind}/pipeline/{name}"
    before: Any = None
    if not run.dry_run:
        try:
            before = run.read("GET", path, f"read pipeline {name}").get(name)
        except BackendError as exc:
            if exc.status != 404:
                raise
    run.send(Request("PUT", path, f"create pipeline {name}", body))
    if run.dry_run:
        return
    if before is None:
        run.undo.append(lambda: _delete(run, path, f"delete pipeline {name}"))
    else:
        run.undo.append(lambda: run.read("PUT", path, f"restore pipeline {name}", body=before))


def _simulate(run: _Cluster, pipeline: Mapping[str, Any], index: Index) -> None:
    """One made-up document through the pipeline: it must come out enriched."""
    x = index.searcher().facts.state().xlidx_meta
    fields = list(x.get("text_fields") or ["body"])
    doc = {
        "_id": "xlidx-connect-check",
        "_source": {fields[-1]: "xlidx connect checks the pipeline."},
    }
    got = run.read(
        "POST", "/_ingest/pipeline/_simulate", "simulate the ingest pipeline",
        body={"pipeline": dict(pipeline), "docs": [doc]},
    )  # fmt: skip
    try:
        out = got["docs"][0]["doc"]["_source"]
    except (KeyError, IndexError, TypeError):
        raise ServiceError(f"the ingest pipeline failed its check: {got}") from None
    pending = (out.get("xlidx") or {}).get("pending")
    if pending or not (out.get("xlidx") or {}).get("passages"):
        reason = (pending or {}).get("reason", "no passages")
        raise ServiceError(f"the ingest pipeline failed its check: {reason}")


def _record(run: _Cluster, index: Index, result: Connected) -> None:
    from xlidx.indices.manage import version_state

    if run.dry_run:
        return
    from xlidx.indices.manage import update_meta

    state = version_state(index.backend, result.version)  # fresh: _prepare_index moved it
    rec = {
        "engine": "opensearch",
        "serve_url": result.serve_url,
        "models": dict(result.models),
        "connectors": dict(result.connectors),
        "ingest_pipeline": result.ingest_pipeline,
        "search_pipeline": result.search_pipeline,
        "weights": list(result.weights or ()),
        "trusted_pattern": result.settings.get("trusted_pattern"),
        "added_pattern": bool(result.settings.get("added_pattern")),
        "enabled_private_ip": bool(result.settings.get("enabled_private_ip")),
        "trusted_were_defaults": bool(result.settings.get("trusted_were_defaults")),
        "connected_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    old = dict(state.xlidx_meta.get("integration") or {})
    # a reconnect keeps what an earlier run changed in the cluster's settings
    rec["added_pattern"] = rec["added_pattern"] or bool(old.get("added_pattern"))
    rec["enabled_private_ip"] = rec["enabled_private_ip"] or bool(old.get("enabled_private_ip"))
    rec["trusted_were_defaults"] = rec["trusted_were_defaults"] or bool(
        old.get("trusted_were_defaults")
    )
    update_meta(index.backend, state, {**state.xlidx_meta, "integration": rec})
