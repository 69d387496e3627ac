"""Queued ingest, client side: the Celery app and its settings, the options a job carries,
the Redis store of each job's progress and dead letters, sending and following jobs, and
the queues' status. The worker side (tasks, per-process model holder) lives in ``workers/``;
nothing here imports it (the app finds its tasks by the module name ``workers.tasks``).
"""
