"""Pure parts of the Elasticsearch dev node: coordinates, paths beside OpenSearch's, settings,
environment, Java selection, and the ``--backend`` option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from xlidx.devnode.artifacts import DISTRIBUTION, ES_DISTRIBUTION, all_artifacts, es_artifacts
from xlidx.devnode.engines import ENGINES, SPECS, engine_spec
from xlidx.devnode.install import engine_artifacts, find_java_home, install_fingerprint, java_major
from xlidx.devnode.node import DEFAULT_HEAPS, DEFAULT_PORTS, node_env, node_settings
from xlidx.devnode.paths import DevPaths
from xlidx.errors import DevNodeError


def test_es_distribution_coordinates_and_pin() -> None:
    assert (
        ES_DISTRIBUTION.coordinates
        == "org.elasticsearch.distribution.integ-test-zip:elasticsearch:8.19.0:zip"
    )
    assert ES_DISTRIBUTION.url == (
        "https://repo1.maven.org/maven2/org/elasticsearch/distribution/integ-test-zip/"
        "elasticsearch/8.19.0/elasticsearch-8.19.0.zip"
    )
    assert ES_DISTRIBUTION.sha256 is not None and len(ES_DISTRIBUTION.sha256) == 64
    assert es_artifacts() == [ES_DISTRIBUTION]
    assert engine_artifacts("elasticsearch") == [ES_DISTRIBUTION]
    assert engine_artifacts("opensearch") == all_artifacts()


def test_opensearch_fingerprint_is_unchanged_by_elasticsearch() -> None:
    """Existing OpenSearch installs must not reinstall because a second engine exists."""
    legacy = json.dumps(sorted(a.coordinates + "@" + str(a.sha256) for a in all_artifacts()))
    assert install_fingerprint() == install_fingerprint("opensearch") == legacy
    assert ES_DISTRIBUTION not in all_artifacts()
    assert "elasticsearch" in install_fingerprint("elasticsearch")
    assert DISTRIBUTION.coordinates not in install_fingerprint("elasticsearch")


def test_defaults_per_engine() -> None:
    assert ENGINES == ("opensearch", "elasticsearch")
    assert DEFAULT_PORTS == {"opensearch": 9200, "elasticsearch": 9201}
    assert DEFAULT_HEAPS == {"opensearch": "1g", "elasticsearch": "512m"}
    assert SPECS["elasticsearch"].main_class == "org.elasticsearch.bootstrap.Elasticsearch"
    assert SPECS["opensearch"].main_class == "org.opensearch.bootstrap.OpenSearch"
    with pytest.raises(DevNodeError, match="unknown dev-node engine 'solr'"):
        engine_spec("solr")


def test_opensearch_paths_are_exactly_the_old_ones(tmp_path: Path) -> None:
    env = {"XLIDX_HOME": str(tmp_path), "XLIDX_DEV_DIR": str(tmp_path / "d")}
    p = DevPaths.from_env(9200, env=env)
    assert p == DevPaths.from_env(9200, env=env, engine="opensearch")
    d = tmp_path / "d"
    assert p.engine == "opensearch"
    assert p.install_dir == d / "opensearch-2.19.1"
    assert p.data_dir == d / "data-9200"
    assert p.logs_dir == d / "logs-9200"
    assert p.pid_file == d / "opensearch-9200.pid"
    assert p.console_log == d / "logs-9200" / "console.log"


def test_elasticsearch_paths_never_collide_with_opensearch(tmp_path: Path) -> None:
    env = {"XLIDX_HOME": str(tmp_path), "XLIDX_DEV_DIR": str(tmp_path / "d")}
    es = DevPaths.from_env(9201, env=env, engine="elasticsearch")
    d = tmp_path / "d"
    assert es.engine == "elasticsearch"
    assert es.downloads == tmp_path / "downloads"  # one download cache for both
    assert es.install_dir == d / "elasticsearch-8.19.0"
    assert es.data_dir == d / "elasticsearch-data-9201"
    assert es.logs_dir == d / "elasticsearch-logs-9201"
    assert es.pid_file == d / "elasticsearch-9201.pid"
    assert es.console_log == d / "elasticsearch-logs-9201" / "console.log"
    # even on the same port (one after the other), no file is shared
    for port in (9200, 9201):
        os_ = DevPaths.from_env(port, env=env)
        es_ = DevPaths.from_env(port, env=env, engine="elasticsearch")
        own = {"install_dir", "data_dir", "logs_dir", "pid_file", "console_log"}
        assert not {getattr(os_, a) for a in own} & {getattr(es_, a) for a in own}
        assert os_.redis_pid_file(6379) == es_.redis_pid_file(6379)  # Redis is shared


def test_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DevNodeError, match="unknown dev-node engine"):
        DevPaths.from_env(9200, env={"XLIDX_HOME": str(tmp_path)}, engine="solr")


def test_node_settings_per_engine(tmp_path: Path) -> None:
    es = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9444, engine="elasticsearch")
    settings = node_settings(es)
    for expected in (
        "-Ediscovery.type=single-node",
        "-Enetwork.host=127.0.0.1",
        "-Ehttp.port=9444",
        f"-Epath.data={tmp_path / 'dev' / 'elasticsearch-data-9444'}",
        f"-Epath.logs={tmp_path / 'dev' / 'elasticsearch-logs-9444'}",
        "-Ecluster.routing.allocation.disk.threshold_enabled=false",
        "-Expack.security.enabled=false",
    ):
        assert expected in settings
    opensearch = node_settings(DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9444))
    assert not any("xpack" in s for s in opensearch)  # an unknown setting would stop OpenSearch


def test_node_env_per_engine(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "JAVA_HOME": "/old", "XLIDX_URL": "http://x:1"}
    java = tmp_path / "jdk"
    es = DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9201, engine="elasticsearch")
    env = node_env(es, java, "512m", base)
    assert env["ES_JAVA_HOME"] == str(java)
    assert env["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m"
    assert env["ES_PATH_CONF"] == str(tmp_path / "dev" / "elasticsearch-8.19.0" / "config")
    assert "JAVA_HOME" not in env  # Elasticsearch warns that it ignores it
    assert not any(k.startswith(("XLIDX_", "OPENSEARCH_")) for k in env)

    os_env = node_env(
        DevPaths(home=tmp_path, node_dir=tmp_path / "dev", port=9200), java, "1g", base
    )
    assert os_env["OPENSEARCH_JAVA_HOME"] == os_env["JAVA_HOME"] == str(java)
    assert os_env["OPENSEARCH_JAVA_OPTS"] == "-Xms1g -Xmx1g"
    assert not any(k.startswith(("XLIDX_", "ES_")) for k in os_env)
    assert base["JAVA_HOME"] == "/old"  # not mutated


def _jdk(root: Path, version: str) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "java").write_text("#!/bin/sh\n")
    (root / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return root


def test_java_major(tmp_path: Path) -> None:
    assert java_major(_jdk(tmp_path / "a", "17.0.12")) == 17
    assert java_major(_jdk(tmp_path / "b", "1.8.0_402")) == 8
    assert java_major(_jdk(tmp_path / "c", "21")) == 21
    assert java_major(tmp_path / "missing") is None


def test_find_java_home_per_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `java` on PATH
    j11, j17 = _jdk(tmp_path / "j11", "11.0.2"), _jdk(tmp_path / "j17", "17.0.1")
    assert find_java_home({"ES_JAVA_HOME": str(j17), "JAVA_HOME": str(j11)}, "elasticsearch") == j17
    assert find_java_home({"OPENSEARCH_JAVA_HOME": str(j11)}) == j11
    # ES_JAVA_HOME is Elasticsearch's; OpenSearch does not read it
    assert find_java_home({"ES_JAVA_HOME": str(j17), "JAVA_HOME": str(j11)}) == j11
    with pytest.raises(
        DevNodeError, match=r"no Java 17 or newer found for Elasticsearch .*Java 11"
    ):
        find_java_home({"JAVA_HOME": str(j11)}, "elasticsearch")


def test_unknown_backend_is_a_usage_error() -> None:
    proc = run_cli("dev", "up", "--backend", "solr")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "'solr'" in ln]
    assert len(lines) == 1 and "--backend" in lines[0] and "elasticsearch" in lines[0]


def test_cluster_node_settings_elasticsearch(tmp_path: Path) -> None:
    from xlidx.devnode.cluster import DevCluster

    cluster = DevCluster.from_env(
        None, 3, "elasticsearch", env={"XLIDX_DEV_DIR": str(tmp_path / "dev")}
    )
    assert cluster.urls == tuple(f"http://127.0.0.1:{p}" for p in (9260, 9261, 9262))
    node = cluster.node(2)
    settings = node_settings(node, cluster.ports)
    for expected in (
        "-Ecluster.name=xlidx-dev-9260",
        "-Enode.name=xlidx-dev-9262",
        "-Etransport.port=9362",
        "-Ediscovery.seed_hosts=127.0.0.1:9360,127.0.0.1:9361,127.0.0.1:9362",
        "-Ecluster.initial_master_nodes=xlidx-dev-9260,xlidx-dev-9261,xlidx-dev-9262",
        "-Ehttp.port=9262",
        f"-Epath.data={tmp_path / 'dev' / 'elasticsearch-data-9262'}",
        "-Expack.security.enabled=false",
    ):
        assert expected in settings
    assert not any("single-node" in s or "cluster_manager" in s for s in settings)
    assert node.pid_file == tmp_path / "dev" / "elasticsearch-9262.pid"
    with pytest.raises(DevNodeError, match="no node 3"):
        cluster.node(3)
