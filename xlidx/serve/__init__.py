"""``xlidx serve``: a warm HTTP service over the library, for applications and clusters.

* :mod:`~xlidx.serve.settings`: what it is started with;
* :mod:`~xlidx.serve.service`: the warm models, their batch queues
  (:mod:`~xlidx.serve.batching`) and the library calls the routes make;
* :mod:`~xlidx.serve.app`: the routes, in the formats clients speak (OpenAI, TEI,
  LibreTranslate, xlidx's own search), and their errors;
* :mod:`~xlidx.serve.metrics`: Prometheus metrics; :mod:`~xlidx.serve.server`: uvicorn;
* :mod:`~xlidx.serve.client`: a client for it (``xlidx query --serve``).
"""
