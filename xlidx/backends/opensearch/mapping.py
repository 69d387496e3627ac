"""Render an :class:`~xlidx.spec.IndexSpec` into an OpenSearch index body (pure).

The vector is a ``knn_vector`` with the k-NN plugin's method (engine, space, HNSW parameters)
in the nested passages, and the index has ``index.knn: true``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from xlidx.errors import ConfigError
from xlidx.spec import IndexSpec, build_index_body


def vector_field(spec: IndexSpec) -> dict[str, Any]:
    if spec.vector.index_type != "hnsw":
        raise ConfigError(
            f"vector index type {spec.vector.index_type!r} is Elasticsearch's; OpenSearch "
            "takes hnsw (choose the engine with --engine lucene|faiss|nmslib)"
        )
    return {
        "type": "knn_vector",
        "dimension": spec.embedding["dimension"],
        "method": spec.vector.method_body(),
    }


def index_body(
    spec: IndexSpec,
    *,
    xlidx_version: str,
    now: datetime | None = None,
    analyzers: frozenset[str] | None = None,
) -> dict[str, Any]:
    body = build_index_body(
        spec,
        xlidx_version=xlidx_version,
        vector_field=vector_field(spec),
        engine="opensearch",
        now=now,
        analyzers=analyzers,
    )
    body["settings"]["index"] = {"knn": True, **body["settings"]["index"]}
    return body
