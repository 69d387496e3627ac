"""Pure parts of the dev-node manager: artifact coordinates, checksums, descriptors, settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from xlidx.devnode.artifacts import DISTRIBUTION, MODULES, PLUGINS, Artifact, all_artifacts, verify
from xlidx.devnode.install import descriptor
from xlidx.devnode.node import node_settings
from xlidx.devnode.paths import DevPaths
from xlidx.errors import ArtifactError


def test_coordinates_and_url() -> None:
    assert (
        DISTRIBUTION.coordinates
        == "org.opensearch.distribution.integ-test-zip:opensearch:2.19.1:zip"
    )
    assert DISTRIBUTION.url == (
        "https://repo1.maven.org/maven2/org/opensearch/distribution/integ-test-zip/"
        "opensearch/2.19.1/opensearch-2.19.1.zip"
    )
    assert [p.artifact for p in PLUGINS] == [
        "opensearch-job-scheduler",
        "opensearch-knn",
        "neural-search",
    ]


def test_every_artifact_is_pinned() -> None:
    for art in all_artifacts():
        assert art.sha256 is not None and len(art.sha256) == 64, art.coordinates


def _artifact_for(data: bytes) -> Artifact:
    return Artifact("g", "a", "1", "zip", hashlib.sha256(data).hexdigest())


def test_verify_accepts_matching_and_rejects_tampered(tmp_path: Path) -> None:
    f = tmp_path / "a-1.zip"
    f.write_bytes(b"payload")
    art = _artifact_for(b"payload")
    sha1 = hashlib.sha1(b"payload").hexdigest()  # noqa: S324
    verify(f, art, published_sha1=f"{sha1}  a-1.zip\n")  # Maven's "<hash>  <name>" form
    with pytest.raises(ArtifactError, match="SHA-1"):
        verify(f, art, published_sha1="0" * 40)
    f.write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="SHA-256"):
        verify(f, art)


def test_module_descriptor() -> None:
    painless, common = MODULES
    text = descriptor(common)
    assert "name=analysis-common\n" in text
    assert "classname=org.opensearch.analysis.common.CommonAnalysisPlugin\n" in text
    assert "extended.plugins=lang-painless\n" in text
    assert "opensearch.version=2.19.1\n" in text
    assert "extended.plugins=\n" in descriptor(painless)


def test_node_settings_bind_loopback_only(tmp_path: Path) -> None:
    paths = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9333)
    settings = node_settings(paths)
    assert "-Enetwork.host=127.0.0.1" in settings
    assert "-Ehttp.port=9333" in settings
    assert f"-Epath.data={tmp_path / 'dev' / 'data-9333'}" in settings
    assert "-Ediscovery.type=single-node" in settings


def test_paths_from_env(tmp_path: Path) -> None:
    p = DevPaths.from_env(
        9200, env={"XLIDX_HOME": str(tmp_path), "XLIDX_DEV_DIR": str(tmp_path / "d")}
    )
    assert p.downloads == tmp_path / "downloads"
    assert p.pid_file == tmp_path / "d" / "opensearch-9200.pid"
