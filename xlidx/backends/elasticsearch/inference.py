"""Elasticsearch's inference API calling ``xlidx serve``: every request ``xlidx connect
elasticsearch`` sends, built here as plain data (pure; sent by the workflow through
``Backend.request``).

What is made, for the xlidx index ``NAME`` (concrete index ``NAME-vN``):

* the inference endpoint ``xlidx-NAME`` (``PUT _inference/text_embedding/xlidx-NAME``) of the
  ``custom`` service (Elasticsearch 8.19+): it POSTs ``{"input": [...], "model": "xlidx/NAME",
  "input_type": "ingest"|"search"}`` to the service's ``/v1/embeddings``, with the key as
  ``Authorization: Bearer`` from the endpoint's ``secret_parameters``, and reads the vectors
  at ``$.data[*].embedding[*]``. Its ``input_type`` translation maps Elasticsearch's
  ``ingest`` and ``search`` onto themselves, which the service turns into the index's passage
  and query roles. Elasticsearch 8.19 translates only those two exact input types: its
  internal callers (the ``inference`` ingest processor sends ``internal_ingest``, a ``knn``
  ``query_vector_builder`` or a ``semantic`` query ``internal_search``) get the ``default``,
  which is ``ingest`` here, so that what the pipeline stores are passage vectors. A query
  vector is asked for with ``input_type: search`` (``POST _inference/text_embedding/xlidx-NAME``).
* on ``NAME-vN``, a ``dense_vector`` per text field under ``xlidx_inference`` (plus its
  ``model_id``, which the ``inference`` processor writes beside its output);
* the ingest pipeline ``xlidx-NAME-ingest``: one ``inference`` processor per text field,
  each writing the field's vector to ``xlidx_inference.<field>`` (a missing field is skipped),
  set as ``NAME-vN``'s ``index.default_pipeline`` (xlidx's own writes name ``_none``).

Mapping fields cannot be taken out of an index: ``--remove`` deletes the pipeline (and the
default pipeline setting) and the endpoint, and leaves the ``xlidx_inference`` fields, which
nothing writes any more.

The inference API is Elasticsearch's ``x-pack-inference`` (the default distribution, not the
integ-test distribution of ``xlidx dev``) under an ``enterprise`` or ``trial`` licence
(``INFERENCE_API_FEATURE`` is licensed ``ENTERPRISE``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from xlidx.backends._dsl import PENDING_MAPPING
from xlidx.backends.elasticsearch.mapping import MAX_DIMS, SIMILARITY
from xlidx.backends.requests import Request
from xlidx.config import redact_url
from xlidx.errors import ConfigError

SERVICE = "custom"
TASK_TYPE = "text_embedding"
#: where the ``custom`` service's ``json_parser`` finds the vectors in a ``/v1/embeddings`` reply
RESPONSE_PATH = "$.data[*].embedding[*]"
#: Elasticsearch's input types (the keys it accepts) → the ``input_type`` xlidx serve takes
INPUT_TYPE_TRANSLATION = {"ingest": "ingest", "search": "search"}
#: what every other input type (the internal ones, or none) is sent as
DEFAULT_INPUT_TYPE = "ingest"
#: the licences under which Elasticsearch runs the inference API
LICENCES = ("enterprise", "trial")
#: the object the pipeline writes its vectors under
OUTPUT_OBJECT = "xlidx_inference"
#: the index's vector space → the endpoint's ``similarity`` (Elasticsearch's SimilarityMeasure)
ENDPOINT_SIMILARITY = {"cosinesimil": "cosine", "innerproduct": "dot_product", "l2": "l2_norm"}

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def endpoint_id(index: str) -> str:
    return f"xlidx-{index}"


def pipeline_id(index: str) -> str:
    return f"xlidx-{index}-ingest"


def serve_model(index: str) -> str:
    """The model name xlidx serve answers for ``index`` with ``input_type`` picking the role."""
    return f"xlidx/{index}"


def output_field(field: str) -> str:
    """Where the pipeline writes ``field``'s vector (dots in the field's name become ``_``)."""
    return f"{OUTPUT_OBJECT}.{field.replace('.', '_')}"


def embeddings_url(serve_url: str) -> str:
    """The service's ``/v1/embeddings`` under ``serve_url`` (``http(s)://host[:port][/prefix]``)."""
    parts = urlsplit(serve_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(
            f"invalid --serve URL {redact_url(serve_url)!r}: expected http(s)://host[:port]"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError("put the service's key in --api-key, not in the --serve URL")
    return serve_url.rstrip("/") + "/v1/embeddings"


# -- the endpoint --------------------------------------------------------------------------------
def request_template(index: str) -> str:
    """The ``custom`` service's ``request``: JSON with ``${input}`` (the texts) and
    ``${input_type}`` (the translated input type), which Elasticsearch replaces with JSON
    values (so they stand unquoted)."""
    model = json.dumps(serve_model(index))
    return '{"input": ${input}, "model": ' + model + ', "input_type": ${input_type}}'


def endpoint_body(
    index: str,
    serve_url: str,
    *,
    api_key: str | None,
    dimensions: int,
    similarity: str,
) -> dict[str, Any]:
    """The body of ``PUT _inference/text_embedding/xlidx-NAME``.

    Settings as Elasticsearch 8.19's ``custom`` service parses them
    (``CustomServiceSettings.fromMap``, ``InputTypeTranslator.fromMap``,
    ``CustomSecretSettings.fromMap``, ``TextEmbeddingResponseParser.fromMap``): ``url``,
    ``headers`` (``${api_key}`` from ``secret_parameters``), ``request`` (a string),
    ``response.json_parser.text_embeddings``, ``input_type.translation`` and ``default``,
    ``dimensions`` and ``similarity``. No ``embedding_type`` (9.2+) nor ``batch_size``.
    """
    if similarity not in ENDPOINT_SIMILARITY:
        raise ConfigError(f"unknown vector space {similarity!r}: expected cosinesimil, "
                          "innerproduct or l2")  # fmt: skip
    headers = {"Content-Type": "application/json"}
    settings: dict[str, Any] = {"url": embeddings_url(serve_url), "headers": headers}
    if api_key:
        headers["Authorization"] = "Bearer ${api_key}"
        settings["secret_parameters"] = {"api_key": api_key}
    settings.update({
        "request": request_template(index),
        "response": {"json_parser": {"text_embeddings": RESPONSE_PATH}},
        "input_type": {"translation": dict(INPUT_TYPE_TRANSLATION), "default": DEFAULT_INPUT_TYPE},
        "dimensions": dimensions,
        "similarity": ENDPOINT_SIMILARITY[similarity],
    })  # fmt: skip
    return {"service": SERVICE, "service_settings": settings}


def same_endpoint(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether an endpoint ``GET _inference`` describes is the one ``wanted`` makes (its
    service, URL, request and input types; the key cannot be read back)."""
    have, want = found.get("service_settings", {}), wanted["service_settings"]
    return (
        found.get("service") == wanted["service"]
        and found.get("task_type", TASK_TYPE) == TASK_TYPE
        and all(have.get(k) == want[k] for k in ("url", "request"))
        and (have.get("input_type") or {}).get("translation") == want["input_type"]["translation"]
    )


def render_custom(template: str, params: Mapping[str, Any], *, json_values: bool) -> str:
    """A ``custom`` template with its ``${name}`` placeholders replaced, as Elasticsearch
    does (``CustomRequest``: in the ``request``, each value as JSON, compact; in the ``url``
    and ``headers``, the string itself); an unknown placeholder is an error there too."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in params:
            raise ConfigError(f"no value for the placeholder ${{{name}}} in {template!r}")
        v = params[name]
        if json_values:
            return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
        return str(v)

    return _PLACEHOLDER.sub(value, template)


# -- the index: mapping and pipeline --------------------------------------------------------------
def mapping_properties(
    text_fields: Sequence[str], dimensions: int, space_type: str
) -> dict[str, Any]:
    """The ``properties`` that hold the pipeline's vectors (``PUT NAME-vN/_mapping``), and
    its ``xlidx.pending`` mark."""
    if space_type not in SIMILARITY:
        raise ConfigError(f"unknown vector space {space_type!r}")
    if not 0 < dimensions <= MAX_DIMS:
        raise ConfigError(f"Elasticsearch indexes vectors of 1 to {MAX_DIMS} dimensions")
    vector = {"type": "dense_vector", "dims": dimensions, "index": True,
              "similarity": SIMILARITY[space_type]}  # fmt: skip
    fields: dict[str, Any] = {"model_id": {"type": "keyword"}}
    for f in text_fields:
        fields[output_field(f).split(".", 1)[1]] = dict(vector)
    return {OUTPUT_OBJECT: {"properties": fields}, **PENDING_MAPPING}


def has_properties(mapping: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether an index's ``mappings.properties`` already hold ``wanted`` (same types and
    dimensions)."""
    have = (mapping.get(OUTPUT_OBJECT) or {}).get("properties", {})
    for name, spec in wanted[OUTPUT_OBJECT]["properties"].items():
        got = have.get(name) or {}
        if any(got.get(k) != spec[k] for k in ("type", "dims") if k in spec):
            return False
    return True


def pipeline_body(index: str, text_fields: Sequence[str]) -> dict[str, Any]:
    """The body of ``PUT _ingest/pipeline/xlidx-NAME-ingest``: one ``inference`` processor
    per text field (``input_output``, ``ignore_missing``), writing to ``xlidx_inference``; on
    failure the document is indexed as written and marked ``xlidx.pending``."""
    endpoint = endpoint_id(index)
    processors = [
        {
            "inference": {
                "tag": f"xlidx-{f}",
                "model_id": endpoint,
                "input_output": [{"input_field": f, "output_field": output_field(f)}],
                "ignore_missing": True,
            }
        }
        for f in text_fields
    ]
    return {
        "description": (
            f"xlidx: the vectors of {', '.join(text_fields)} for documents written to {index} "
            f"without xlidx, from xlidx serve ({serve_model(index)}) through the inference "
            f"endpoint {endpoint}"
        ),
        "processors": processors,
        # the service down or refusing: the document is indexed as written, marked (as
        # OpenSearch's pipeline of `xlidx connect` marks it); the write never fails
        "on_failure": [
            {"remove": {"field": OUTPUT_OBJECT, "ignore_missing": True}},
            {"set": {"field": "xlidx.pending.reason", "value": "{{{_ingest.on_failure_message}}}"}},
            {"set": {"field": "xlidx.pending.since", "value": "{{{_ingest.timestamp}}}"}},
        ],
        "_meta": {"xlidx": {"index": index, "endpoint": endpoint}},
    }


# -- the cluster's answers ------------------------------------------------------------------------
#: the first Elasticsearch with the ``custom`` inference service and its input type translation
CUSTOM_SINCE = (8, 19)


def has_custom_service(version: str) -> bool:
    """Whether Elasticsearch ``version`` (``8.19.0``, ``9.1.2-SNAPSHOT``) has the ``custom``
    service (8.19 and 9.1 added it; 9.0 has not)."""
    parts: list[int] = []
    for p in version.split("-")[0].split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    v = tuple(parts)
    return v >= CUSTOM_SINCE and not (9, 0) <= v < (9, 1)


def licence_problem(reply: Mapping[str, Any]) -> str | None:
    """Why ``GET _license``'s ``reply`` rules the inference API out; ``None`` if it allows it."""
    lic = reply.get("license") or {}
    kind, status = lic.get("type"), lic.get("status")
    if kind in LICENCES and status == "active":
        return None
    return f"its licence is {kind or 'unknown'} ({status or 'no status'})"


# -- requests -----------------------------------------------------------------------------------
def check_requests() -> list[Request]:
    return [
        Request("GET", "/_inference/_all", "list the inference endpoints"),
        Request("GET", "/_license", "read the licence"),
    ]


def serve_probe(index: str, serve_url: str, api_key: str | None) -> Request:
    """One text to the service as the endpoint will send it: it answers, takes the key, and
    knows the index."""
    body: dict[str, Any] = {
        "input": ["xlidx connect probe"],
        "model": serve_model(index),
        "input_type": "ingest",
    }
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    return Request("POST", embeddings_url(serve_url), "embed a probe text",
                   body, to="serve", headers=headers)  # fmt: skip


def endpoint_path(index: str) -> str:
    return f"/_inference/{TASK_TYPE}/{endpoint_id(index)}"


def pipeline_path(index: str) -> str:
    return f"/_ingest/pipeline/{pipeline_id(index)}"


def get_endpoint(index: str) -> Request:
    return Request("GET", endpoint_path(index), "read the inference endpoint")


def put_endpoint(index: str, body: Mapping[str, Any]) -> Request:
    return Request("PUT", endpoint_path(index), "create the inference endpoint", body)


def delete_endpoint(index: str) -> Request:
    return Request("DELETE", endpoint_path(index), "delete the inference endpoint")


def get_pipeline(index: str) -> Request:
    return Request("GET", pipeline_path(index), "read the ingest pipeline")


def put_pipeline(index: str, body: Mapping[str, Any]) -> Request:
    return Request("PUT", pipeline_path(index), "create the ingest pipeline", body)


def delete_pipeline(index: str) -> Request:
    return Request("DELETE", pipeline_path(index), "delete the ingest pipeline")


def get_mapping(concrete: str) -> Request:
    return Request("GET", f"/{concrete}/_mapping", "read the index's mapping")


def put_mapping(concrete: str, properties: Mapping[str, Any]) -> Request:
    return Request("PUT", f"/{concrete}/_mapping", "add the vector fields",
                   {"properties": dict(properties)})  # fmt: skip


def get_settings(concrete: str) -> Request:
    return Request("GET", f"/{concrete}/_settings/index.default_pipeline",
                   "read the index's default pipeline")  # fmt: skip


def put_default_pipeline(concrete: str, pipeline: str | None) -> Request:
    action = "make the pipeline the index's default" if pipeline else "unset the default pipeline"
    return Request("PUT", f"/{concrete}/_settings", action,
                   {"index": {"default_pipeline": pipeline}})  # fmt: skip


def put_meta(concrete: str, meta: Mapping[str, Any], action: str) -> Request:
    return Request("PUT", f"/{concrete}/_mapping", action, {"_meta": dict(meta)})
