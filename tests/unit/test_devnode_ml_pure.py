"""Pure parts of `xlidx dev up --with-ml`: the ml-commons pin, its install apart from the plain
node's (same fingerprint as before for the plain one), its settings and default port."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from xlidx.devnode.artifacts import (
    ML_MODULES,
    ML_PLUGIN,
    PLUGINS,
    Artifact,
    all_artifacts,
    cached_copies,
    fetch,
    ml_artifacts,
    verify,
)
from xlidx.devnode.cluster import DevCluster, default_port
from xlidx.devnode.install import extra_plugins, install_fingerprint
from xlidx.devnode.ml import ML_PORT, ML_SETTINGS
from xlidx.devnode.node import node_settings
from xlidx.devnode.paths import DevPaths
from xlidx.errors import ArtifactError, DevNodeError


def test_ml_plugin_is_pinned_by_size_and_sha256() -> None:
    assert ML_PLUGIN.coordinates == "org.opensearch.plugin:opensearch-ml-plugin:2.19.1.0:zip"
    assert ML_PLUGIN.url == (
        "https://repo1.maven.org/maven2/org/opensearch/plugin/opensearch-ml-plugin/2.19.1.0/"
        "opensearch-ml-plugin-2.19.1.0.zip"
    )
    assert ML_PLUGIN.size == 362_924_991
    assert ML_PLUGIN.sha256 == "2324234d81109dcb2c488da5a6b2034cc0f78d9d08e40ce49ba59fc423a5df5f"
    assert ML_PLUGIN not in all_artifacts()
    modules = [j for m in ML_MODULES for j in m.jars]
    assert ml_artifacts() == [*all_artifacts(), ML_PLUGIN, *modules]
    assert {m.name for m in ML_MODULES} == {"ingest-common", "lang-mustache"}
    assert all(j.sha256 for j in modules)


def test_the_plain_node_keeps_its_fingerprint_and_install_dir(tmp_path: Path) -> None:
    legacy = json.dumps(sorted(a.coordinates + "@" + str(a.sha256) for a in all_artifacts()))
    assert install_fingerprint() == legacy
    with_ml = install_fingerprint(ml=True)
    assert with_ml != legacy and ML_PLUGIN.coordinates in with_ml
    plain = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9200)
    ml = replace(plain, ml=True)
    assert plain.install_dir == tmp_path / "dev" / "opensearch-2.19.1"
    assert ml.install_dir == tmp_path / "dev" / "opensearch-2.19.1-ml"
    # data, logs and pid file are the port's, whichever install runs on it
    assert (ml.data_dir, ml.logs_dir, ml.pid_file) == (
        plain.data_dir,
        plain.logs_dir,
        plain.pid_file,
    )
    assert extra_plugins(plain) == () and extra_plugins(ml) == (ML_PLUGIN,)
    assert PLUGINS[0].artifact == "opensearch-job-scheduler"  # what ml-commons extends
    assert (plain.display, ml.display) == ("OpenSearch", "OpenSearch with ml-commons")


def test_ml_is_opensearch_only(tmp_path: Path) -> None:
    with pytest.raises(DevNodeError, match="OpenSearch plugin"):
        DevPaths(home=tmp_path, node_dir=tmp_path, port=9201, engine="elasticsearch", ml=True)


def test_ml_node_settings(tmp_path: Path) -> None:
    plain = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=ML_PORT)
    ml = replace(plain, ml=True)
    assert node_settings(ml) == [*node_settings(plain), *ML_SETTINGS]
    # measured: none is needed for remote models (see xlidx/devnode/ml.py); and the ones that
    # `xlidx connect` sets at run time are never in the node's configuration
    assert ML_SETTINGS == ()
    for setting in node_settings(ml):
        assert "trusted_connector_endpoints" not in setting and "private_ip" not in setting


def test_ml_default_port_and_single_node() -> None:
    assert ML_PORT == 9210
    assert default_port("opensearch", ml=True) == 9210 and default_port("opensearch") == 9200
    cluster = DevCluster.from_env(None, 1, env={"XLIDX_DEV_DIR": "/x"}, ml=True)
    assert cluster.ports == (9210,) and cluster.nodes[0].ml
    with pytest.raises(DevNodeError, match="single node"):
        DevCluster.from_env(None, 3, env={"XLIDX_DEV_DIR": "/x"}, ml=True)


def _artifact(data: bytes) -> Artifact:
    return Artifact("g", "a", "1", "zip", hashlib.sha256(data).hexdigest(), size=len(data))


def test_verify_checks_the_pinned_size(tmp_path: Path) -> None:
    f = tmp_path / "a-1.zip"
    f.write_bytes(b"payload")
    verify(f, _artifact(b"payload"))
    f.write_bytes(b"payloa")  # truncated
    with pytest.raises(ArtifactError, match="6 bytes, not the pinned 7"):
        verify(f, _artifact(b"payload"))


def test_fetch_reuses_a_verified_copy_in_either_layout(tmp_path: Path) -> None:
    """A copy in Maven's layout (``m2/``) or a plain one is used without mvn or network."""
    art = _artifact(b"zip bytes")
    in_m2, flat = cached_copies(art, tmp_path)
    assert in_m2 == tmp_path / "m2" / "g" / "a" / "1" / "a-1.zip" and flat == tmp_path / "a-1.zip"
    for copy in (in_m2, flat):
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(b"zip bytes")
        for mvn in ("/nonexistent/mvn", False):
            assert fetch(art, tmp_path, mvn=mvn) == copy
        copy.unlink()


def test_fetch_drops_a_corrupt_copy_and_tries_https_when_mvn_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xlidx.devnode import artifacts

    art = _artifact(b"zip bytes")
    in_m2, _flat = cached_copies(art, tmp_path)
    in_m2.parent.mkdir(parents=True)
    in_m2.write_bytes(b"zip byte")  # a truncated earlier download
    fetched: list[str] = []

    def fake_download(url: str, dest: Path, timeout: float = 120.0) -> None:
        fetched.append(url)
        dest.write_bytes(b"zip bytes")

    monkeypatch.setattr(artifacts, "_http_download", fake_download)
    monkeypatch.setattr(artifacts, "_http_get", lambda url, timeout=120.0: None)  # no .sha1
    logged: list[str] = []
    path = fetch(art, tmp_path, mvn="/nonexistent/mvn", log=logged.append)
    assert path == tmp_path / "a-1.zip" and path.read_bytes() == b"zip bytes"
    assert not in_m2.exists()
    assert fetched == [art.url]
    assert any("corrupt" in m for m in logged) and any("trying HTTPS" in m for m in logged)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["a-1.zip"]  # no temp left


def test_dev_up_with_ml_refuses_what_it_cannot_be() -> None:
    """One line each, before anything is installed or started."""
    from tests.conftest import run_cli

    for args, expected in (
        (("--backend", "elasticsearch"), "OpenSearch plugin: Elasticsearch has none"),
        (("--nodes", "3"), "--with-ml starts a single node"),
    ):
        proc = run_cli("dev", "up", "--with-ml", *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_dev_help_names_with_ml() -> None:
    from tests.conftest import run_cli

    for command in ("up", "down", "status"):
        proc = run_cli("dev", command, "--help")
        assert proc.returncode == 0 and "--with-ml" in proc.stdout
        assert "9210 with --with-ml" in proc.stdout
