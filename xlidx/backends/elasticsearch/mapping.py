"""Render an :class:`~xlidx.spec.IndexSpec` into an Elasticsearch index body (pure).

The vector is a ``dense_vector`` in the nested passages, with ``dims`` and ``similarity``
from the spec (``cosinesimil`` → ``cosine``, ``innerproduct`` → ``max_inner_product``, which
unlike ``dot_product`` does not require unit vectors, ``l2`` → ``l2_norm``) and HNSW
``index_options`` of the spec's type (``hnsw``, ``int8_hnsw`` or ``bbq_hnsw``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from xlidx.errors import ConfigError
from xlidx.spec import IndexSpec, build_index_body

SIMILARITY = {"cosinesimil": "cosine", "innerproduct": "max_inner_product", "l2": "l2_norm"}
MAX_DIMS = 4096
BBQ_MIN_DIMS = 64


def vector_field(spec: IndexSpec) -> dict[str, Any]:
    v = spec.vector
    dims = int(spec.embedding["dimension"])
    if v.knn_engine != "lucene":
        raise ConfigError(
            f"vector engine {v.knn_engine!r} is OpenSearch's; Elasticsearch's vectors are Lucene "
            "HNSW (pick quantization with --vector-index hnsw|int8_hnsw|bbq_hnsw)"
        )
    if dims > MAX_DIMS:
        raise ConfigError(f"Elasticsearch indexes vectors of at most {MAX_DIMS} dimensions")
    if v.index_type == "bbq_hnsw" and dims < BBQ_MIN_DIMS:
        raise ConfigError(
            f"bbq_hnsw needs at least {BBQ_MIN_DIMS} dimensions, the model has {dims}"
        )
    return {
        "type": "dense_vector",
        "dims": dims,
        "index": True,
        "similarity": SIMILARITY[v.space_type],
        "index_options": {"type": v.index_type, "m": v.m, "ef_construction": v.ef_construction},
    }


def index_body(
    spec: IndexSpec,
    *,
    xlidx_version: str,
    now: datetime | None = None,
    analyzers: frozenset[str] | None = None,
) -> dict[str, Any]:
    return build_index_body(
        spec,
        xlidx_version=xlidx_version,
        vector_field=vector_field(spec),
        engine="elasticsearch",
        now=now,
        analyzers=analyzers,
    )
