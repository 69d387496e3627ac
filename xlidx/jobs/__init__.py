"""Queued ingest without Celery: its settings, the options a job carries, and the Redis store
that keeps each job's progress and the dead letters. The Celery wiring lives in ``workers/``.
"""
