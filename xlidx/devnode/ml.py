"""What ``xlidx dev up --with-ml`` adds to the OpenSearch dev node (pure data).

ml-commons (:data:`~xlidx.devnode.artifacts.ML_PLUGIN`) lets the cluster call a model
served elsewhere: a *remote* model behind a connector (``xlidx serve``). The node runs from
an install of its own (``opensearch-2.19.1-ml``, see :class:`~xlidx.devnode.paths.DevPaths`)
on port :data:`ML_PORT` unless told otherwise, with the plain node's settings and heap (1g).

Measured on 2.19.1, a single node on 2 cores (a remote connector and model registered and
deployed, then called): nothing in ml-commons needs setting at startup for remote models, so
:data:`ML_SETTINGS` is empty.

* ``plugins.ml_commons.only_run_on_ml_node`` (default true) concerns local models and the
  built-in algorithms only (``_train_predict/kmeans`` answers "No eligible node found"):
  remote models deploy on nodes with the roles of
  ``task_dispatcher.eligible_node_role.remote_model`` (default data and ml), so on this node.
* The memory circuit breaker (``jvm_heap_memory_threshold``, 85 %) is not consulted for
  remote models: register, deploy and predict went through with it at 5 % (kmeans tripped
  it). With a 1g heap the node uses 10 % of it after starting and 26 % after a deploy.
* ``native_memory_threshold`` (90 %) has no effect: 2.19.1 logs "Registered ML native memory
  breaker" without registering one (nothing tripped at 10 % with the OS at 44 %, a figure
  that counts the page cache as used).
* ``model_access_control_enabled`` and ``allow_registering_model_via_url`` are not needed for
  remote connectors.

Never set here: the trusted-endpoint regex and ``connector.private_ip_enabled`` (needed to call
a loopback service): ``xlidx connect`` sets them at run time, as dynamic cluster settings,
for the endpoint it registers.
"""

from __future__ import annotations

ML_PORT = 9210  # off the plain dev node's 9200 and Elasticsearch's 9201

# `-E` settings added to the plain node's for ml-commons: none is needed (see above)
ML_SETTINGS: tuple[str, ...] = ()
