"""Celery wiring for xlidx's background indexing queues (translate, embed, write).

Only wiring lives here: the app with its queues and routes (:mod:`workers.app`), the
per-process holder of models and clients (:mod:`workers.holder`), thin tasks over the
``xlidx.pipeline`` stage functions (:mod:`workers.tasks`) and the client side that enqueues
batches and follows jobs (:mod:`workers.submit`).

Run a worker with ``xlidx worker`` (or ``celery -A workers.app worker -Q translate,embed,write``).

Importing any of these modules builds no Celery app and reads no queue settings: the app is
built from the environment on first use (:func:`workers.app.get_app`).
"""
