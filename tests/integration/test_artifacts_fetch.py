"""Fetching from Maven Central for real, both ways (mvn, and plain HTTPS where mvn is absent)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import unavailable
from xlidx.devnode.artifacts import ES_DISTRIBUTION, MODULES, _http_get, fetch, verify
from xlidx.devnode.paths import xlidx_home
from xlidx.errors import ArtifactError

pytestmark = pytest.mark.integration

# the smallest pinned artifact: asm 9.7 (about 120 kB)
ASM = next(j for m in MODULES for j in m.jars if j.artifact == "asm")


def test_https_fallback_verifies_published_sha1_and_pin(tmp_path: Path) -> None:
    try:
        path = fetch(ASM, tmp_path, mvn=False)
    except ArtifactError as exc:
        unavailable(f"Maven Central unreachable: {exc}")
        return
    assert path == tmp_path / "asm-9.7.jar" and path.stat().st_size > 50_000
    # a wrong pin is refused and the file is not kept
    bad = replace(ASM, sha256="0" * 64)
    path.unlink()
    with pytest.raises(ArtifactError, match="SHA-256"):
        fetch(bad, tmp_path, mvn=False)
    assert not (tmp_path / "asm-9.7.jar").exists()


def test_mvn_path(tmp_path: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        pytest.skip("mvn is not installed: the HTTPS path above is what runs here")
    path = fetch(ASM, tmp_path, mvn=mvn)
    assert path.is_file() and path.is_relative_to(tmp_path / "m2")
    # cached: a second fetch does not call mvn at all
    assert fetch(ASM, tmp_path, mvn="/nonexistent/mvn") == path
    # a corrupt cached file is detected and fetched again
    path.write_bytes(b"corrupt")
    assert fetch(ASM, tmp_path, mvn=mvn).read_bytes()[:2] == b"PK"


def test_es_distribution_pin_matches_what_central_publishes() -> None:
    """Elasticsearch's zip is 97 MB: it is fetched and verified once per run, by
    `xlidx dev up --backend elasticsearch` (test_devnode_es.py). Here only the checksums Central
    publishes beside it are compared with the pin, and a cached copy is verified against both."""
    try:
        sha256 = _http_get(ES_DISTRIBUTION.url + ".sha256", timeout=30.0)
        sha1 = _http_get(ES_DISTRIBUTION.url + ".sha1", timeout=30.0)
    except ArtifactError as exc:
        unavailable(f"Maven Central unreachable: {exc}")
        return
    assert sha256 is not None and sha1 is not None, "Central no longer publishes the checksums"
    assert sha256.decode().split()[0] == ES_DISTRIBUTION.sha256
    downloads = xlidx_home() / "downloads"
    for cached in (downloads / "m2" / ES_DISTRIBUTION.path, downloads / ES_DISTRIBUTION.filename):
        if cached.is_file():
            verify(cached, ES_DISTRIBUTION, sha1.decode())
