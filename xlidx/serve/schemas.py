"""The request bodies the service takes, in the formats clients already speak: OpenAI's
``/v1/embeddings``, text-embeddings-inference's ``/embed``, LibreTranslate's ``/translate``
and ``/detect``; and xlidx's own ``/indices/{name}/enrich``. Types are checked by pydantic
(a wrong type is 422, one line)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

InputType = Literal["ingest", "search"]


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request; ``input_type`` picks the role where the model name
    cannot (Elasticsearch's ``custom`` service sends it)."""

    model_config = ConfigDict(extra="ignore")  # e.g. "user", which the service does not use

    input: str | list[str]
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: InputType | None = None


class EmbedRequest(BaseModel):
    """text-embeddings-inference's ``/embed``; ``model`` and ``input_type`` are xlidx's."""

    model_config = ConfigDict(extra="ignore")  # "normalize", "truncate": vectors are unit rows

    inputs: str | list[str]
    model: str | None = None
    input_type: InputType | None = None


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # "api_key", "alternatives" (LibreTranslate's)

    q: str | list[str]
    source: str = "auto"
    target: str
    format: Literal["text"] = "text"


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str | list[str]


class EnrichDocument(BaseModel):
    """One document an application wrote: its ``_id`` (``null`` when the cluster makes one)
    and its ``_source``."""

    id: str | None = None
    source: dict[str, Any]


class EnrichRequest(BaseModel):
    """``POST /indices/{name}/enrich``: what the ingest pipeline of ``xlidx connect`` sends."""

    documents: list[EnrichDocument]
