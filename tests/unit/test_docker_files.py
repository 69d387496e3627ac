"""The Docker files cannot run here (no engine); check what can be checked without one."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import REPO


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    return data


def test_compose_services() -> None:
    services = _compose()["services"]
    engines = {"opensearch", "elasticsearch", "redis"}
    assert set(services) == engines | {"worker-cpu", "worker-gpu", "serve-cpu", "serve-gpu"}
    os_ = services["opensearch"]
    assert os_["image"].startswith("opensearchproject/opensearch:2.19")
    assert os_["profiles"] == ["opensearch"]
    assert "opensearch-data:/usr/share/opensearch/data" in os_["volumes"]
    assert "_cluster/health" in " ".join(os_["healthcheck"]["test"])
    es = services["elasticsearch"]
    assert es["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:8.19")
    assert es["profiles"] == ["elasticsearch"]
    assert es["environment"]["xpack.security.enabled"] == "false"
    assert es["ports"] == ["127.0.0.1:9201:9200"]  # beside OpenSearch's 9200
    assert "_cluster/health" in " ".join(es["healthcheck"]["test"])
    assert "healthcheck" in services["redis"]


def test_workers_share_configuration_and_gpu_is_reserved() -> None:
    services = _compose()["services"]
    cpu, gpu = services["worker-cpu"], services["worker-gpu"]
    assert cpu["environment"] == gpu["environment"]
    assert cpu["environment"]["XLIDX_URL"] == "${XLIDX_URL:-http://opensearch:9200}"
    assert cpu["environment"]["XLIDX_BROKER_URL"].startswith("redis://redis:6379")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "--device" in cpu["command"] and "cuda" in gpu["command"]
    for worker in (cpu, gpu):
        assert worker["build"]["dockerfile"] == "docker/Dockerfile"
        for engine in ("opensearch", "elasticsearch"):  # whichever profile is up
            dep = worker["depends_on"][engine]
            assert dep == {"condition": "service_healthy", "required": False}


def test_dockerfile_builds_from_the_repository() -> None:
    text = (REPO / "docker" / "Dockerfile").read_text()
    for needed in (
        "COPY pyproject.toml",
        "COPY xlidx",
        "COPY mappings",
        "pip install .",
        "USER xlidx",
    ):
        assert needed in text


def test_serve_services_need_keys_and_report_health() -> None:
    services = _compose()["services"]
    cpu, gpu = services["serve-cpu"], services["serve-gpu"]
    for serve in (cpu, gpu):
        assert serve["command"][:2] == ["xlidx", "serve"] and "0.0.0.0" in serve["command"]  # noqa: S104
        assert serve["environment"]["XLIDX_SERVE_API_KEYS"].startswith("${XLIDX_SERVE_API_KEYS:?")
        assert "/health" in " ".join(serve["healthcheck"]["test"])
        assert serve["ports"][0].startswith("127.0.0.1:")
    assert "cuda" in gpu["command"] and "gpu" in str(gpu["deploy"])
