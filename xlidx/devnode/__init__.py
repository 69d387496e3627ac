"""Local development clusters without Docker: an OpenSearch or Elasticsearch node (or a
cluster of ``--nodes N`` on loopback) from Maven Central, and Redis from Debian.

* :mod:`~xlidx.devnode.artifacts`: downloads (Maven), pinned and cached;
* :mod:`~xlidx.devnode.install`: unpacking a distribution and its plugins;
* :mod:`~xlidx.devnode.engines`: what differs between OpenSearch and Elasticsearch;
* :mod:`~xlidx.devnode.node` and :mod:`~xlidx.devnode.cluster`: starting, waiting, stopping;
* :mod:`~xlidx.devnode.redis`: the queue's Redis;
* :mod:`~xlidx.devnode.paths`: where each lives under ``XLIDX_HOME``.
"""
