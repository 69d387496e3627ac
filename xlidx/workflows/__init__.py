"""The service layer: every workflow of xlidx, once.

:class:`Cluster` opens the connection; :meth:`Cluster.index` gives an :class:`Index`, which
owns every workflow on one xlidx index (create, status, ingest, enqueue, search, migrate with
its gate, calibrate, evaluate, roll back, prune, delete). The CLI, the Celery workers and the
HTTP service are adapters over it: they parse their input, call it and render its typed
results (each has ``to_json()``). Nothing here prints or exits.
"""

from __future__ import annotations

from xlidx.workflows.cluster import Cluster
from xlidx.workflows.index import Index

__all__ = ["Cluster", "Index"]
