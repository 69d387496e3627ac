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


def test_single_node_settings_are_unchanged_by_clusters(tmp_path: Path) -> None:
    paths = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9200)
    expected = [
        "-Ecluster.name=xlidx-dev",
        "-Enode.name=xlidx-dev",
        "-Ediscovery.type=single-node",
        "-Enetwork.host=127.0.0.1",
        "-Ehttp.port=9200",
        f"-Epath.data={tmp_path / 'dev' / 'data-9200'}",
        f"-Epath.logs={tmp_path / 'dev' / 'logs-9200'}",
        "-Ecluster.routing.allocation.disk.threshold_enabled=false",
    ]
    assert node_settings(paths) == expected
    assert node_settings(paths, (9200,)) == expected


def test_cluster_node_settings_opensearch(tmp_path: Path) -> None:
    from xlidx.devnode.node import cluster_ports

    ports = cluster_ports(9200, 3)
    assert ports == (9200, 9201, 9202)
    paths = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9201)
    settings = node_settings(paths, ports)
    assert settings[:5] == [
        "-Ecluster.name=xlidx-dev-9200",
        "-Enode.name=xlidx-dev-9201",
        "-Etransport.port=9301",
        "-Ediscovery.seed_hosts=127.0.0.1:9300,127.0.0.1:9301,127.0.0.1:9302",
        "-Ecluster.initial_cluster_manager_nodes=xlidx-dev-9200,xlidx-dev-9201,xlidx-dev-9202",
    ]
    assert "-Ediscovery.type=single-node" not in settings
    assert "-Ehttp.port=9201" in settings and "-Enetwork.host=127.0.0.1" in settings
    assert f"-Epath.data={tmp_path / 'dev' / 'data-9201'}" in settings


def test_cluster_shape_is_checked(tmp_path: Path) -> None:
    from xlidx.devnode.node import cluster_ports
    from xlidx.errors import DevNodeError

    for bad in (0, -2):
        with pytest.raises(DevNodeError, match="--nodes must be 1 or more"):
            cluster_ports(9200, bad)
    paths = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9300)
    with pytest.raises(DevNodeError, match="not a node of the cluster"):
        node_settings(paths, (9200, 9201))


def test_cluster_default_ports_never_overlap() -> None:
    from xlidx.devnode.cluster import DevCluster, default_port
    from xlidx.devnode.node import transport_port

    assert default_port("opensearch") == 9200 and default_port("elasticsearch") == 9201
    assert default_port("opensearch", 3) == 9250 and default_port("elasticsearch", 3) == 9260
    os_ports = DevCluster.from_env(None, 3, env={"XLIDX_DEV_DIR": "/x"}).ports
    es_ports = DevCluster.from_env(None, 3, "elasticsearch", env={"XLIDX_DEV_DIR": "/x"}).ports
    assert os_ports == (9250, 9251, 9252) and es_ports == (9260, 9261, 9262)
    everything = [*os_ports, *es_ports, 9200, 9201]  # the single dev nodes' ports too
    everything += [transport_port(p) for p in everything]
    assert len(set(everything)) == len(everything)


def test_dev_up_refuses_zero_nodes() -> None:
    from tests.conftest import run_cli

    for bad in ("0", "-1"):
        proc = run_cli("dev", "up", "--nodes", bad)
        assert proc.returncode == 2, proc.stderr
        assert "--nodes" in proc.stderr and "Traceback" not in proc.stderr


def test_cluster_ports_must_fit() -> None:
    from xlidx.devnode.node import cluster_ports
    from xlidx.errors import DevNodeError

    assert cluster_ports(65535, 1) == (65535,)
    with pytest.raises(DevNodeError, match="do not fit below 65536"):
        cluster_ports(65500, 3)
