"""xlidx: cross-lingual hybrid search on the OpenSearch/Elasticsearch clusters you already run.

The public surface is what ``__all__`` lists; everything else is private and may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from xlidx.config import ConnectionSettings, Secret, load_connection
from xlidx.errors import (
    ArtifactError,
    AuthenticationFailed,
    BackendError,
    ConfigError,
    ConnectionFailed,
    DevNodeError,
    Interrupted,
    MappingError,
    ModelError,
    ModelMismatch,
    TLSFailed,
    XlidxError,
)

_LAZY = {
    # name -> module; imported on first use so that `import xlidx` stays light
    # the service layer: every workflow
    "Cluster": "xlidx.workflows.cluster",
    "Index": "xlidx.workflows.index",
    "Gate": "xlidx.eval.gate",
    "GateRefused": "xlidx.workflows.migrate",
    "Migration": "xlidx.workflows.migrate",
    "Evaluation": "xlidx.eval.evaluation",
    "IngestOptions": "xlidx.pipeline.options",
    "IngestSummary": "xlidx.pipeline.summary",
    "QueuedSummary": "xlidx.pipeline.summary",
    "FromIndex": "xlidx.workflows.inputs",
    "FileSource": "xlidx.workflows.inputs",
    "DeadLetterSink": "xlidx.workflows.ingest",
    "StopRequest": "xlidx.workflows.ingest",
    "ingest": "xlidx.workflows.ingest",
    "FollowOptions": "xlidx.workflows.follow_types",
    "FollowSummary": "xlidx.workflows.follow_types",
    "Connected": "xlidx.workflows.connect",
    "Enriched": "xlidx.workflows.enrich",
    # the pieces
    "load_embedder": "xlidx.pipeline.embed",
    "Translator": "xlidx.pipeline.translate",
    "Detector": "xlidx.pipeline.detect",
    "open_source": "xlidx.pipeline.sources",
    "IndexSpec": "xlidx.spec",
    "VectorSpec": "xlidx.spec",
    "Backend": "xlidx.backends",
    "Capabilities": "xlidx.backends",
    "open_backend": "xlidx.backends",
    "Query": "xlidx.query.plan",
    "Searcher": "xlidx.search",
    "QueryResult": "xlidx.search",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xlidx' has no attribute {name!r}")


try:
    __version__ = version("xlidx")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ArtifactError",
    "AuthenticationFailed",
    "Backend",
    "BackendError",
    "Capabilities",
    "Cluster",
    "ConfigError",
    "Connected",
    "ConnectionFailed",
    "ConnectionSettings",
    "DeadLetterSink",
    "Detector",
    "DevNodeError",
    "Enriched",
    "Evaluation",
    "FileSource",
    "FollowOptions",
    "FollowSummary",
    "FromIndex",
    "Gate",
    "GateRefused",
    "Index",
    "IndexSpec",
    "IngestOptions",
    "IngestSummary",
    "Interrupted",
    "MappingError",
    "Migration",
    "ModelError",
    "ModelMismatch",
    "Query",
    "QueryResult",
    "QueuedSummary",
    "Searcher",
    "Secret",
    "StopRequest",
    "TLSFailed",
    "Translator",
    "VectorSpec",
    "XlidxError",
    "__version__",
    "ingest",
    "load_connection",
    "load_embedder",
    "open_backend",
    "open_source",
]
