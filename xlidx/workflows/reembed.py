"""Re-embed stored documents for ``xlidx index migrate --model``.

Translations are kept (they do not depend on the embedding model); passages and vectors are
recomputed from the original text fields, and the content hash is updated so that a later
``xlidx ingest`` of unchanged input with the new model skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xlidx.documents import content_hash
from xlidx.pipeline.fingerprint import pipeline_fingerprint
from xlidx.pipeline.stages import EmbedderLike


def reembedder(
    embedder: EmbedderLike, meta: Mapping[str, Any]
) -> Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]]:
    text_fields = tuple(meta.get("text_fields", ()))
    fingerprint = pipeline_fingerprint(
        embedder.describe(), translate_to=meta.get("translate_to", ()), text_fields=text_fields
    )

    def transform(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        passages: list[str] = []
        owners: list[int] = []
        for i, doc in enumerate(docs):
            text = "\n\n".join(
                doc[f] for f in text_fields if isinstance(doc.get(f), str) and doc[f]
            )
            parts = embedder.split_passages(text) or [text]
            passages.extend(parts)
            owners.extend([i] * len(parts))
        vectors = embedder.encode_document(passages) if passages else []
        per_doc: list[list[list[float]]] = [[] for _ in docs]
        for i, v in zip(owners, vectors, strict=True):
            per_doc[i].append([float(x) for x in v])
        out: list[dict[str, Any]] = []
        for doc, vecs in zip(docs, per_doc, strict=True):
            x = dict(doc.get("xlidx", {}))
            # new passages: each in the document's language (passage texts are not stored,
            # so a mixed document's passages cannot be told apart again here)
            lang = x.get("lang", "und")
            x["passages"] = [{"vector": v, "n": n, "lang": lang} for n, v in enumerate(vecs)]
            x["passage_count"] = len(vecs)
            x["model"] = embedder.name
            if x.get("content_id"):
                x["content_hash"] = content_hash(x["content_id"], fingerprint)
            out.append({**doc, "xlidx": x})
        return out

    return transform
