"""The request bodies of ``xlidx connect opensearch`` (pure): ml-commons connectors and
remote models that call ``xlidx serve``, the ingest pipeline that enriches an application's
writes, and the search pipeline that fuses its ``hybrid`` queries.

Facts these bodies rest on (ml-commons 2.19, checked on the dev node):

* A connector needs a non-empty ``credential``; the key goes into the ``Authorization``
  header as ``${credential.api_key}`` (ml-commons stores it encrypted).
* ``client_config`` timeouts are seconds; 2.19's default is 30000, so they are always set.
  Retries fire only on a reply carrying ``x-amzn-ErrorType: ThrottlingException``, which is
  what ``xlidx serve`` sends with its 429.
* An object-valued parameter (the document the ingest pipeline sends) is rendered as JSON in
  the request body; the reply's numbers come back as doubles (the merge script turns the
  integer fields back into integers).
* The dev node's integ-test distribution lacks ``ingest-common`` and ``lang-mustache``;
  ``dev up --with-ml`` adds them (the ``script``, ``set`` and ``remove`` processors, and the
  ``{{_ingest.on_failure_message}}`` template).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from xlidx.backends._dsl import PASSAGES, VECTOR_FIELD, bm25_query

if TYPE_CHECKING:
    from xlidx.plans import QueryPlan

#: One remote model per role: OpenSearch cannot tell a query from a passage (neural-search#620).
ROLES = ("passage", "query", "translate", "detect", "document")
TEMP_IN, TEMP_OUT = "_xlidx_in", "_xlidx_out"
PENDING = "xlidx.pending"

#: Connection limits and timeouts of every connector (ml-commons#2487: without them a large
#: bulk fails with "Acquire operation took longer than the configured maximum time"). Each
#: document of a bulk request is one call, all at once: with 64 connections a bulk of 200
#: documents left some pending (measured, BENCHMARKS.md); 256 is what ``xlidx serve`` takes
#: at once (its connection limit), and the service queues and batches them.
CLIENT_CONFIG: dict[str, Any] = {
    "max_connection": 256,
    "connection_timeout": 5,  # seconds
    "read_timeout": 60,  # seconds: a call waits for the documents queued before it
    "max_retry_times": 3,  # on 429 (ThrottlingException) only
    "retry_backoff_policy": "exponential_full_jitter",
    "retry_backoff_millis": 200,
    "retry_timeout_seconds": 30,
}

_OPENAI = {
    "pre_process_function": "connector.pre_process.openai.embedding",
    "post_process_function": "connector.post_process.openai.embedding",
}


def name_of(index: str, role: str) -> str:
    return f"xlidx-{index}-{role}"


def ingest_pipeline_name(index: str) -> str:
    return f"xlidx-{index}-ingest"


def search_pipeline_name(index: str) -> str:
    return f"xlidx-{index}-search"


def endpoint_pattern(url: str) -> str:
    """The regex, for ``plugins.ml_commons.trusted_connector_endpoints_regex``, that admits
    every path of the service at ``url`` and nothing else (it must match the whole URL)."""
    base = url.rstrip("/")
    return f"^{re.escape(base)}/.*$"


def connector_body(index: str, role: str, serve_url: str, api_key: str) -> dict[str, Any]:
    """The connector that calls the service for ``role`` of ``index``."""
    base = serve_url.rstrip("/")
    action: dict[str, Any] = {
        "action_type": "predict",
        "method": "POST",
        "headers": {
            "Authorization": "Bearer ${credential.api_key}",
            "Content-Type": "application/json",
        },
    }
    parameters: dict[str, Any] = {}
    if role in ("passage", "query"):
        parameters["model"] = f"xlidx/{index}:{role}"
        action["url"] = f"{base}/v1/embeddings"
        action["request_body"] = '{ "input": ${parameters.input}, "model": "${parameters.model}" }'
        action.update(_OPENAI)
    elif role == "translate":
        parameters.update({"source": "auto", "target": "en"})
        action["url"] = f"{base}/translate"
        action["request_body"] = (
            '{ "q": ${parameters.q}, "source": "${parameters.source}", '
            '"target": "${parameters.target}" }'
        )
    elif role == "detect":
        action["url"] = f"{base}/detect"
        action["request_body"] = '{ "q": ${parameters.q} }'
    elif role == "document":
        action["url"] = f"{base}/indices/{index}/enrich"
        action["request_body"] = '{ "documents": [ ${parameters.document} ] }'
    else:
        raise ValueError(f"unknown role {role!r}")
    return {
        "name": name_of(index, role),
        "description": f"xlidx serve: the {role} role of index {index}",
        "version": 1,
        "protocol": "http",
        "parameters": parameters,
        "credential": {"api_key": api_key},
        "client_config": dict(CLIENT_CONFIG),
        "actions": [action],
    }


def model_body(index: str, role: str, connector_id: str) -> dict[str, Any]:
    return {
        "name": name_of(index, role),
        "function_name": "remote",
        "description": f"xlidx serve: the {role} role of index {index}",
        "connector_id": connector_id,
    }


def smoke_input(role: str) -> dict[str, Any]:
    """A ``_predict`` body that checks a role's model end to end."""
    if role in ("passage", "query"):
        return {"parameters": {"input": ["xlidx connect: smoke test"]}}
    if role in ("translate", "detect"):
        return {"parameters": {"q": ["xlidx connect: smoke test"]}}
    return {"parameters": {"document": {"id": None, "source": {"xlidx_smoke_test": True}}}}


# the document as the service is to see it: the application's fields, not the cluster's
# metadata (_index, _id, ...) nor what enrichment adds
_BUILD_INPUT = f"""
Map src = new HashMap();
for (def k : ctx.keySet()) {{
  if (!k.startsWith('_') && k != 'i18n' && k != 'xlidx') {{ src.put(k, ctx[k]); }}
}}
ctx['{TEMP_IN}'] = ['id': ctx['_id'], 'source': src];
"""

# the service's answer into the document; numbers come back as doubles
_MERGE = f"""
def out = ctx['{TEMP_OUT}'];
def d = out instanceof List ? out[0] : out;
ctx.remove('{TEMP_OUT}');
ctx.remove('{TEMP_IN}');
if (d == null) {{ throw new IllegalArgumentException('xlidx serve sent no document'); }}
if (d.error != null) {{ throw new IllegalArgumentException('xlidx: ' + d.error); }}
def x = d.xlidx;
x.passage_count = ((Number) x.passage_count).intValue();
for (def p : x.passages) {{ p.n = ((Number) p.n).intValue(); }}
ctx.i18n = d.i18n;
ctx.xlidx = x;
"""


def ingest_pipeline_body(index: str, document_model: str) -> dict[str, Any]:
    """The pipeline that turns an application's plain document into the one ``xlidx ingest``
    writes; when the service is down or refuses, the document is indexed as written, its
    text searchable with BM25, and marked ``xlidx.pending`` with the reason."""
    return {
        "description": f"xlidx: enrich the documents applications write to {index} (xlidx connect)",
        "processors": [
            {"script": {"lang": "painless", "source": _BUILD_INPUT.strip()}},
            {
                "ml_inference": {
                    "model_id": document_model,
                    "function_name": "remote",
                    "input_map": [{"document": TEMP_IN}],
                    "output_map": [{TEMP_OUT: "documents"}],
                }
            },
            {"script": {"lang": "painless", "source": _MERGE.strip()}},
        ],
        "on_failure": [
            {"remove": {"field": [TEMP_IN, TEMP_OUT, "i18n"], "ignore_missing": True}},
            {"set": {"field": f"{PENDING}.reason", "value": "{{{_ingest.on_failure_message}}}"}},
            {"set": {"field": f"{PENDING}.since", "value": "{{{_ingest.timestamp}}}"}},
        ],
    }


def hybrid_query(plan: QueryPlan, query_model: str) -> dict[str, Any]:
    """The plain ``hybrid`` query an application sends after ``connect`` (the README's
    example): xlidx's BM25 clause for ``plan`` (its text fields, and ``i18n.<field>.<lang>``
    for each language the query is in) and ``neural`` over the passages with the query
    model, fused by the index's default search pipeline."""
    neural = {"query_text": plan.text, "model_id": query_model, "k": plan.window}
    knn = {
        "nested": {
            "path": PASSAGES,
            "score_mode": "max",
            "query": {"neural": {VECTOR_FIELD: neural}},
        }
    }
    return {"size": plan.size, "query": {"hybrid": {"queries": [bm25_query(plan), knn]}}}
