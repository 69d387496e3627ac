"""Vectors for texts exactly as an index's ingest and its queries make them: the index's
model with the role's prompt, the language detected the same way, the index's calibration
applied, unit length. What ``xlidx serve`` answers for ``xlidx/<index>:passage`` and
``xlidx/<index>:query``, and how an application gets vectors that match the index.

* ``passage``: detected with the detector the index records (``_meta.xlidx.detection``: its
  languages and confidence threshold, as ingest detects a document's language), encoded with
  the document prompt and centered with that language's document-side mean. A text longer
  than one passage gets the vector of its first passage, which ingest stores as passage 0.
* ``query``: :meth:`~xlidx.search.encode.QueryEncoder.query_vectors`, the path of every
  ``xlidx query``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from xlidx.errors import ConfigError

if TYPE_CHECKING:
    from xlidx.pipeline.detect import Detector
    from xlidx.pipeline.embed import Embedder, Vectors
    from xlidx.search.encode import QueryEncoder

#: The roles a text is embedded in: a stored passage, or a query.
ROLES = ("passage", "query")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: expected passage or query")
    return role


def embed(encoder: QueryEncoder, texts: Sequence[str], role: str) -> list[list[float]]:
    """One unit vector per text in ``role`` for the index ``encoder`` reads
    (:mod:`module docs <xlidx.workflows.vectors>`)."""
    check_role(role)
    texts = list(texts)
    if not texts:
        return []
    if role == "query":
        return encoder.query_vectors(texts)
    raws: list[list[float]] = raw_vectors(encoder.embedder(), texts, "passage").tolist()
    cal = encoder.calibration()
    if cal is None or not cal.centers:
        return raws
    langs = passage_detector(encoder.facts.state().xlidx_meta).detect_many(texts)
    return [p["vector"] for p in cal.passages(raws, langs)]


def raw_vectors(embedder: Embedder, texts: Sequence[str], role: str) -> Vectors:
    """The model's own vectors for ``texts`` in ``role`` (its prompt; a passage cut to the
    first one ingest would store), before any calibration."""
    if check_role(role) == "query":
        return embedder.encode_query(list(texts))
    return embedder.encode_document(first_passages(embedder, texts))


def first_passages(embedder: Embedder, texts: Sequence[str]) -> list[str]:
    """Each text as ingest's first passage of it: the whole text where it fits the model."""
    from xlidx.pipeline.embed import surely_fits

    prompt, limit = embedder.document_prompt, embedder.max_tokens
    return [
        t if surely_fits(t, prompt, limit) else (embedder.split_passages(t) or [t])[0]
        for t in texts
    ]


def passage_detector(xlidx_meta: Mapping[str, Any]) -> Detector:
    """The detector an index's ingest labelled its documents with, from its ``_meta``."""
    from xlidx.pipeline.detect import DEFAULT_MIN_CONFIDENCE, Detector

    recorded = xlidx_meta.get("detection") or {}
    label = [str(x) for x in recorded.get("languages") or ["all"]]
    return Detector(
        () if label == ["all"] else label,
        min_confidence=float(recorded.get("min_confidence", DEFAULT_MIN_CONFIDENCE)),
    )
