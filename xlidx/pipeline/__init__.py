"""The ingest pipeline: one stage per module (sources, detect, translate, embed, write).

Each stage is a plain function or object over a batch, usable in-process (``xlidx ingest``)
or behind a Celery task.
"""
