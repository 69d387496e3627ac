"""Celery wiring for xlidx's background indexing queues (translate, embed, write).

Only wiring lives here: the app, queues and routes, thin tasks over ``xlidx.pipeline``
functions, and the per-process model holder. Nothing is defined yet; see the CHANGELOG.
"""
