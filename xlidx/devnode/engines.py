"""The two engines a dev node can run, and what differs between them (pure data).

OpenSearch comes from its ``integ-test-zip`` plus plugins and assembled modules (see
:mod:`xlidx.devnode.artifacts`); Elasticsearch from its ``integ-test-zip`` alone. Both run
as a single node on 127.0.0.1 with the same ``-E`` settings, except that Elasticsearch's
zip carries x-pack security, which is switched off (the node is loopback-only, as the
OpenSearch one, which has no security plugin at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xlidx.devnode.artifacts import (
    DISTRIBUTION,
    ELASTICSEARCH_VERSION,
    ES_DISTRIBUTION,
    OPENSEARCH_VERSION,
    Artifact,
)
from xlidx.errors import DevNodeError

Engine = Literal["opensearch", "elasticsearch"]
ENGINES: tuple[Engine, ...] = ("opensearch", "elasticsearch")


@dataclass(frozen=True)
class EngineSpec:
    name: Engine
    display: str  # how messages name it
    version: str
    distribution: Artifact
    main_class: str  # in the server JVM's command line: the pid marker
    java_home_env: str  # the variable its start script reads the Java home from
    java_opts_env: str
    path_conf_env: str
    java_home_vars: tuple[str, ...]  # where find_java_home looks, in order
    min_java: int
    default_port: int
    default_heap: str
    initial_managers_setting: str  # the nodes that may bootstrap a new multi-node cluster
    extra_settings: tuple[str, ...] = ()

    @property
    def launcher(self) -> str:
        """The start script, relative to the install directory."""
        return f"bin/{self.name}"

    @property
    def install_name(self) -> str:
        """The top directory inside the distribution zip."""
        return f"{self.name}-{self.version}"


OPENSEARCH = EngineSpec(
    name="opensearch",
    display="OpenSearch",
    version=OPENSEARCH_VERSION,
    distribution=DISTRIBUTION,
    main_class="org.opensearch.bootstrap.OpenSearch",
    java_home_env="OPENSEARCH_JAVA_HOME",
    java_opts_env="OPENSEARCH_JAVA_OPTS",
    path_conf_env="OPENSEARCH_PATH_CONF",
    java_home_vars=("OPENSEARCH_JAVA_HOME", "JAVA_HOME"),
    min_java=11,
    default_port=9200,
    default_heap="1g",
    initial_managers_setting="cluster.initial_cluster_manager_nodes",
)

ELASTICSEARCH = EngineSpec(
    name="elasticsearch",
    display="Elasticsearch",
    version=ELASTICSEARCH_VERSION,
    distribution=ES_DISTRIBUTION,
    main_class="org.elasticsearch.bootstrap.Elasticsearch",
    java_home_env="ES_JAVA_HOME",
    java_opts_env="ES_JAVA_OPTS",
    path_conf_env="ES_PATH_CONF",
    java_home_vars=("ES_JAVA_HOME", "JAVA_HOME"),
    min_java=17,
    default_port=9201,
    default_heap="512m",
    initial_managers_setting="cluster.initial_master_nodes",
    extra_settings=("-Expack.security.enabled=false",),
)

SPECS: dict[Engine, EngineSpec] = {"opensearch": OPENSEARCH, "elasticsearch": ELASTICSEARCH}


def engine_spec(engine: str) -> EngineSpec:
    """The spec of ``engine``; :class:`DevNodeError` naming the known ones otherwise."""
    for name, spec in SPECS.items():
        if name == engine:
            return spec
    raise DevNodeError(f"unknown dev-node engine {engine!r}: use one of {', '.join(ENGINES)}")
