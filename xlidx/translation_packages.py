"""Installed argos translation packages: find, validate and install them.

An argos package (``.argosmodel``) is a zip with one top folder, e.g.
``translate-fr_en-1_9/``, holding ``metadata.json``, ``sentencepiece.model`` and ``model/`` (a
CTranslate2 model). Installing means unzipping it into the packages directory:
``$ARGOS_PACKAGES_DIR`` when set, else argos's own default
``$XDG_DATA_HOME/argos-translate/packages`` (``~/.local/share/argos-translate/packages``).

Listing reads only ``metadata.json`` files (no heavy imports). Only
:func:`install_from_index` imports argostranslate, and it fails fast when offline.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from xlidx.config import argos_dirs
from xlidx.errors import ModelError

LANG_CODE = re.compile(r"^[a-z]{2,3}$")
INDEX_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class InstalledPackage:
    """One installed translation package (a directory under the packages directory)."""

    from_code: str
    to_code: str
    version: str
    path: Path
    name: str
    target_prefix: str = ""

    @property
    def pair(self) -> tuple[str, str]:
        return (self.from_code, self.to_code)

    def describe(self) -> dict[str, str]:
        """What to record in an index's ``_meta``: from, to, version, name."""
        return {
            "from": self.from_code,
            "to": self.to_code,
            "version": self.version,
            "name": self.name,
        }


def check_lang_code(code: str) -> str:
    """Return ``code`` when it is an ISO 639 code (2-3 lowercase letters); else ModelError."""
    if not isinstance(code, str) or not LANG_CODE.match(code):
        raise ModelError(f"invalid language code {code!r}: expected 2-3 lowercase letters")
    return code


def default_packages_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where argos installs packages: ``$ARGOS_PACKAGES_DIR``, argos's settings.json, default."""
    dirs = argos_dirs(env)
    if dirs.packages_dir is not None:
        return dirs.packages_dir
    settings = _read_json(dirs.config_home / "argos-translate" / "settings.json")
    if isinstance(settings, dict) and isinstance(settings.get("ARGOS_PACKAGES_DIR"), str):
        return Path(settings["ARGOS_PACKAGES_DIR"]).expanduser()
    return dirs.data_home / "argos-translate" / "packages"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def package_from_metadata(path: Path, metadata: Any) -> InstalledPackage:
    """Build an :class:`InstalledPackage` from a parsed ``metadata.json``; ModelError if bad."""
    if not isinstance(metadata, dict):
        raise ModelError(f"{path}: metadata.json is not a JSON object")
    kind = metadata.get("type", "translate")
    if kind != "translate":
        raise ModelError(f"{path}: package type is {kind!r}, not 'translate'")
    codes = (metadata.get("from_code"), metadata.get("to_code"))
    if not all(isinstance(c, str) and LANG_CODE.match(c) for c in codes):
        raise ModelError(f"{path}: metadata.json has bad from_code/to_code {codes!r}")
    return InstalledPackage(
        from_code=str(codes[0]),
        to_code=str(codes[1]),
        version=str(metadata.get("package_version") or "0"),
        path=path,
        name=path.name,
        target_prefix=str(metadata.get("target_prefix") or ""),
    )


def read_package(path: Path) -> InstalledPackage:
    """Read one installed package directory; ModelError when it is not a translate package."""
    metadata_path = path / "metadata.json"
    if not metadata_path.is_file():
        raise ModelError(f"{path} is not an argos package (no metadata.json)")
    metadata = _read_json(metadata_path)
    if metadata is None:
        raise ModelError(f"{metadata_path} is not readable JSON")
    return package_from_metadata(path, metadata)


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[._-]", version))


def list_installed(packages_dir: Path | None = None) -> list[InstalledPackage]:
    """Every translate package installed in ``packages_dir``, sorted by pair then version.

    Directories that are not translate packages (e.g. argos's sentence-boundary packages)
    are skipped. A missing directory means nothing is installed.
    """
    root = packages_dir if packages_dir is not None else default_packages_dir()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            found.append(read_package(child))
        except ModelError:
            continue
    return sorted(found, key=lambda p: (p.pair, _version_key(p.version), p.name))


def latest_by_pair(packages: list[InstalledPackage]) -> dict[tuple[str, str], InstalledPackage]:
    """The newest package for each (from, to) pair."""
    best: dict[tuple[str, str], InstalledPackage] = {}
    for pkg in packages:
        current = best.get(pkg.pair)
        if current is None or _version_key(pkg.version) >= _version_key(current.version):
            best[pkg.pair] = pkg
    return best


def _archive_root(zf: zipfile.ZipFile, source: Path) -> str:
    """The single top folder of a package archive; ModelError on unsafe or odd layouts."""
    tops = set()
    for name in zf.namelist():
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in name:
            raise ModelError(f"{source}: unsafe path {name!r} in the archive")
        if pure.parts:
            tops.add(pure.parts[0])
    if len(tops) != 1:
        raise ModelError(f"{source}: expected one top folder in the archive, found {len(tops)}")
    return tops.pop()


def inspect_package_file(path: Path) -> tuple[str, dict[str, Any]]:
    """Validate a ``.argosmodel`` file without extracting it; return (top folder, metadata)."""
    if not path.is_file():
        raise ModelError(f"package file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is not an argos package (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            root = _archive_root(zf, path)
            names = set(zf.namelist())
            if f"{root}/metadata.json" not in names:
                raise ModelError(f"{path} is not an argos package (no {root}/metadata.json)")
            metadata = json.loads(zf.read(f"{root}/metadata.json").decode("utf-8"))
            package_from_metadata(Path(root), metadata)
            for required in ("model/model.bin", "sentencepiece.model"):
                if f"{root}/{required}" not in names:
                    raise ModelError(f"{path} is not a usable package (no {root}/{required})")
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is a corrupt argos package: {exc}") from None
    return root, metadata


def install_from_file(path: Path | str, packages_dir: Path | None = None) -> InstalledPackage:
    """Validate and unzip a ``.argosmodel`` file into ``packages_dir``; return the package.

    An installed package with the same folder name is replaced. The archive is extracted
    beside the target first, then renamed, so a failed install leaves nothing half-written.
    """
    source = Path(path).expanduser()
    root, _ = inspect_package_file(source)
    dest_root = packages_dir if packages_dir is not None else default_packages_dir()
    dest_root.mkdir(parents=True, exist_ok=True)
    target = dest_root / root
    with tempfile.TemporaryDirectory(dir=dest_root, prefix=".installing-") as tmp:
        try:
            with zipfile.ZipFile(source) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelError(f"{source} could not be extracted: {exc}") from None
        if target.exists():
            shutil.rmtree(target)
        Path(tmp, root).rename(target)
    return read_package(target)


def _offline_error(reason: object) -> ModelError:
    return ModelError(
        f"the argos package index is unreachable ({reason}); download the package elsewhere "
        "and install it with `xlidx models install-translation FROM TO --file PKG.argosmodel`"
    )


def _probe_index(url: str, timeout: float) -> None:
    """Fail fast (ModelError) when the argos package index cannot be fetched."""
    if not url.startswith(("http://", "https://")):
        raise _offline_error(f"unsupported index URL {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            response.read(1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        text = str(reason).strip()
        raise _offline_error(text.splitlines()[0] if text else type(exc).__name__) from None


def install_from_index(
    from_code: str,
    to_code: str,
    packages_dir: Path | None = None,
    *,
    index_url: str | None = None,
    timeout: float = INDEX_TIMEOUT_S,
) -> InstalledPackage:
    """Download the (from, to) package from the argos package index and install it.

    ``index_url`` defaults to argos's configured index (``ARGOS_PACKAGE_INDEX``). Offline, this
    fails within ``timeout`` seconds with a one-line ModelError naming ``--file``.
    """
    check_lang_code(from_code)
    check_lang_code(to_code)
    if index_url is None:
        from argostranslate import settings  # type: ignore[import-untyped]

        index_url = str(settings.remote_package_index)
    _probe_index(index_url, timeout)
    from argostranslate import package as argos_package
    from argostranslate import settings as argos_settings

    url = index_url
    configured = argos_settings.remote_package_index
    argos_settings.remote_package_index = url
    try:
        argos_package.update_package_index()
    finally:
        argos_settings.remote_package_index = configured
    if not argos_settings.local_package_index.is_file():
        raise _offline_error("the index download failed")
    available = [
        p
        for p in argos_package.get_available_packages()
        if (p.from_code, p.to_code) == (from_code, to_code) and p.type == "translate"
    ]
    if not available:
        raise ModelError(f"the argos package index has no {from_code}→{to_code} package")
    newest = max(available, key=lambda p: _version_key(str(p.package_version)))
    try:
        downloaded = Path(newest.download())
    except Exception as exc:  # argos raises a bare Exception when every link fails
        raise ModelError(f"downloading the {from_code}→{to_code} package failed: {exc}") from None
    return install_from_file(downloaded, packages_dir)
