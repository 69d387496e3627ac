"""xlidx: cross-lingual hybrid search on the OpenSearch/Elasticsearch clusters you already run.

The public surface is what ``__all__`` lists; everything else is private and may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from xlidx.config import ConnectionSettings, Secret, load_connection
from xlidx.errors import (
    ArtifactError,
    AuthenticationFailed,
    BackendError,
    ConfigError,
    ConnectionFailed,
    DevNodeError,
    TLSFailed,
    XlidxError,
)

try:
    __version__ = version("xlidx")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ArtifactError",
    "AuthenticationFailed",
    "BackendError",
    "ConfigError",
    "ConnectionFailed",
    "ConnectionSettings",
    "DevNodeError",
    "Secret",
    "TLSFailed",
    "XlidxError",
    "__version__",
    "load_connection",
]
