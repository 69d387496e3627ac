"""``xlidx models``: installed translation packages and embedding models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from xlidx.cli._state import out

app = typer.Typer(help="Translation packages and embedding models.", no_args_is_help=True)


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List installed translation packages and the embedding models xlidx can load."""
    from xlidx.pipeline.hub import local_embedding_models
    from xlidx.translation_packages import default_packages_dir, list_installed

    packages = list_installed()
    translation = [{**p.describe(), "path": str(p.path)} for p in packages]
    embedding = local_embedding_models()
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "translation_packages_dir": str(default_packages_dir()),
                    "translation": translation,
                    "embedding": embedding,
                }
            )
        )
        return
    t = Table(
        "from", "to", "version", "package", title=f"Translation packages ({default_packages_dir()})"
    )
    for p in translation:
        t.add_row(p["from"], p["to"], p["version"], p["name"])
    if not translation:
        t.add_row("-", "-", "-", "none installed: xlidx models install-translation FROM TO")
    out.print(t)
    e = Table("model", "kind", "available", title="Embedding models")
    for m in embedding:
        e.add_row(m["name"], m["kind"], "yes" if m["available"] else "no")
    out.print(e)


@app.command("install-translation")
def install_translation(
    from_code: Annotated[str, typer.Argument(metavar="FROM", help="Source language, e.g. fr.")],
    to_code: Annotated[str, typer.Argument(metavar="TO", help="Target language, e.g. en.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Install this .argosmodel file (offline).", show_default=False),
    ] = None,
) -> None:
    """Install an argos translation package: from a local file, or from the argos index."""
    from xlidx.errors import ModelError
    from xlidx.translation_packages import (
        inspect_package_file,
        install_from_file,
        install_from_index,
    )

    if file is not None:
        _root, meta = inspect_package_file(file)
        pair = (meta.get("from_code"), meta.get("to_code"))
        if pair != (from_code, to_code):
            raise ModelError(
                f"{file.name} translates {pair[0]}->{pair[1]}, not {from_code}->{to_code}; "
                "not installed"
            )
        pkg = install_from_file(file)
    else:
        pkg = install_from_index(from_code, to_code)
    out.print(f"installed {pkg.name} {pkg.version} ({pkg.from_code}->{pkg.to_code}) at {pkg.path}")
