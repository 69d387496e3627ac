"""Finding, validating and installing argos packages (hand-made archives, no model)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from xlidx.errors import ModelError
from xlidx.translation_packages import (
    InstalledPackage,
    check_lang_code,
    default_packages_dir,
    install_from_file,
    install_from_index,
    latest_by_pair,
    list_installed,
)


def metadata(src: str = "fr", tgt: str = "en", version: str = "1.0", **extra: Any) -> str:
    return json.dumps(
        {"package_version": version, "type": "translate", "from_code": src, "to_code": tgt} | extra
    )


def make_zip(dest: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return dest


def good_files(top: str = "translate-fr_en-1_0", meta: str | None = None) -> dict[str, str | bytes]:
    return {
        f"{top}/metadata.json": meta or metadata(),
        f"{top}/model/model.bin": b"\0",
        f"{top}/model/config.json": "{}",
        f"{top}/sentencepiece.model": b"\0",
    }


def test_default_packages_dir() -> None:
    assert default_packages_dir({"ARGOS_PACKAGES_DIR": "/x/pk"}) == Path("/x/pk")
    assert default_packages_dir({"HOME": "/h", "XDG_CONFIG_HOME": "/none"}) == Path(
        "/h/.local/share/argos-translate/packages"
    )
    assert default_packages_dir({"XDG_DATA_HOME": "/d", "XDG_CONFIG_HOME": "/none"}) == Path(
        "/d/argos-translate/packages"
    )


def test_default_packages_dir_reads_argos_settings(tmp_path: Path) -> None:
    settings = tmp_path / "argos-translate" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"ARGOS_PACKAGES_DIR": "/from/settings"}))
    assert default_packages_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == Path("/from/settings")


@pytest.mark.parametrize("code", ["en", "fra", "zt"])
def test_valid_codes(code: str) -> None:
    assert check_lang_code(code) == code


@pytest.mark.parametrize("code", ["", "e", "EN", "english", "pt-BR", "e1", " en"])
def test_invalid_codes(code: str) -> None:
    with pytest.raises(ModelError, match="invalid language code"):
        check_lang_code(code)


def test_install_and_list(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.argosmodel", good_files())
    pk = tmp_path / "packages"
    pkg = install_from_file(src, pk)
    assert pkg == InstalledPackage(
        "fr", "en", "1.0", pk / "translate-fr_en-1_0", "translate-fr_en-1_0"
    )
    assert pkg.describe() == {"from": "fr", "to": "en", "version": "1.0", "name": pkg.name}
    assert list_installed(pk) == [pkg]
    # installing again replaces the folder
    assert install_from_file(src, pk) == pkg
    assert [p.name for p in pk.iterdir()] == ["translate-fr_en-1_0"]


def test_list_skips_non_translate_and_broken_dirs(tmp_path: Path) -> None:
    pk = tmp_path / "packages"
    for name, meta in {
        "sbd": json.dumps({"type": "sbd", "from_code": "en", "to_code": "en"}),
        "badjson": "{not json",
        "badcode": metadata(src="French"),
        "ok": metadata("de", "en", "2.0"),
    }.items():
        (pk / name).mkdir(parents=True)
        (pk / name / "metadata.json").write_text(meta)
    (pk / "no-metadata").mkdir()
    (pk / "stray-file").write_text("x")
    assert [p.name for p in list_installed(pk)] == ["ok"]
    assert list_installed(tmp_path / "missing") == []


def test_latest_by_pair_prefers_newer_versions(tmp_path: Path) -> None:
    pkgs = [InstalledPackage("fr", "en", v, tmp_path / v, v) for v in ("1.9", "1.10", "1.2")] + [
        InstalledPackage("de", "en", "1.0", tmp_path / "de", "de")
    ]
    best = latest_by_pair(pkgs)
    assert best[("fr", "en")].version == "1.10"
    assert set(best) == {("fr", "en"), ("de", "en")}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a/metadata.json": metadata(), "b/x": "y"}, "one top folder"),
        ({"t/model/model.bin": b"\0", "t/sentencepiece.model": b"\0"}, "no t/metadata.json"),
        (good_files("t", metadata(type="sbd")), "not 'translate'"),
        (good_files("t", "[1, 2]"), "not a JSON object"),
        (good_files("t", "{nope"), "corrupt"),
        (good_files("t", metadata(src="xx-YY")), "bad from_code"),
        ({"t/metadata.json": metadata(), "t/sentencepiece.model": b"\0"}, "no t/model/model.bin"),
        ({"t/metadata.json": metadata(), "t/../../evil": "x"}, "unsafe path"),
    ],
)
def test_install_rejects_bad_archives(tmp_path: Path, files: dict[str, str], message: str) -> None:
    src = make_zip(tmp_path / "p.argosmodel", files)
    with pytest.raises(ModelError, match=message) as info:
        install_from_file(src, tmp_path / "packages")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "packages").exists() or not any((tmp_path / "packages").iterdir())


def test_install_rejects_missing_and_non_zip_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        install_from_file(tmp_path / "nope.argosmodel", tmp_path / "pk")
    junk = tmp_path / "junk.argosmodel"
    junk.write_bytes(b"PK\3\4 truncated garbage")
    with pytest.raises(ModelError, match="not a zip archive"):
        install_from_file(junk, tmp_path / "pk")


def test_install_from_index_fails_fast_offline(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        # nothing listens on port 9 (discard) on 127.0.0.1 in the test environments
        install_from_index("fr", "en", tmp_path, index_url="http://127.0.0.1:9/index.json")
    message = str(info.value)
    assert time.monotonic() - start < 10
    assert "argos package index is unreachable" in message
    assert "--file PKG.argosmodel" in message
    assert "\n" not in message


def test_install_from_index_checks_codes_before_importing_argos(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="invalid language code"):
        install_from_index("French", "en", tmp_path)


def test_listing_does_not_import_heavy_modules(tmp_path: Path) -> None:
    code = (
        "import sys, pathlib; from xlidx.translation_packages import list_installed; "
        f"list_installed(pathlib.Path({str(tmp_path)!r})); "
        "import xlidx.pipeline.translate; "
        "print(sorted(m for m in ('ctranslate2', 'argostranslate', 'torch', 'sentencepiece') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
