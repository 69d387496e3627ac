"""The ingest pipeline's stages and the pure pieces they share. No module here talks to the
cluster: whatever reads or writes an index lives in :mod:`xlidx.indices`, and the stages are
assembled into one ``Pipeline`` by the service layer (:mod:`xlidx.workflows.pipeline`), which
in-process ingest runs overlapped and the Celery workers run stage by stage.

* what a run is asked and what it did: :mod:`~xlidx.pipeline.options` (``IngestOptions``)
  and :mod:`~xlidx.pipeline.summary` (``IngestSummary``, ``QueuedSummary``);
* reading: :mod:`~xlidx.pipeline.sources` (JSONL, CSV, a directory, stdin),
  :mod:`~xlidx.pipeline.checkpoint` (resuming a file), :mod:`~xlidx.pipeline.fingerprint`
  (what produced a document, to skip it when unchanged);
* the batch and its stages: :mod:`~xlidx.pipeline.stages`, :mod:`~xlidx.pipeline.detect`,
  :mod:`~xlidx.pipeline.segments`, :mod:`~xlidx.pipeline.translate`,
  :mod:`~xlidx.pipeline.embed`, :mod:`~xlidx.pipeline.overlap`, and
  :mod:`~xlidx.pipeline.wire` (a prepared record as a queue message);
* what gets written: :mod:`~xlidx.pipeline.write` (the document, pure) and
  :mod:`~xlidx.pipeline.calibration` (the per-language centering math, pure);
* waiting out a busy cluster: :mod:`~xlidx.pipeline.patience`.
"""
