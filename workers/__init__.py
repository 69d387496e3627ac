"""Celery wiring for xlidx's background indexing queues (translate, embed, write).

Only the worker side lives here: the module Celery loads (:mod:`workers.app`, the app of
:mod:`xlidx.jobs.app`), the per-process holder of models and clients
(:mod:`workers.holder`) and thin tasks, each running one stage of
:class:`xlidx.workflows.pipeline.Pipeline` (:mod:`workers.tasks`). The client side (sending
batches, following jobs) is :mod:`xlidx.jobs.submit`.

Run a worker with ``xlidx worker`` (or ``celery -A workers.app worker -Q translate,embed,write``).

Importing any of these modules builds no Celery app and reads no queue settings: the app is
built from the environment on first use (:func:`xlidx.jobs.app.get_app`).
"""
