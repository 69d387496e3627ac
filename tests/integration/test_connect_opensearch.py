"""``xlidx connect opensearch`` on a real OpenSearch node with ml-commons and a real ``xlidx
serve`` process: an application's plain REST writes come out as ``xlidx ingest`` writes them,
its plain ``hybrid`` query ranks as ``xlidx query`` does, a service killed in the middle of
a stream of writes fails none of them (the documents are pending, and ``xlidx enrich
--pending`` completes them once), and bad input is refused in one line with nothing left.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import drop_index, run_cli
from tests.fixtures.serve import Served, serving
from xlidx.config import ConnectionSettings

pytestmark = [pytest.mark.integration, pytest.mark.ml]

KEY = "connect-test-key"
TATOEBA = Path(__file__).resolve().parents[3] / "shared" / "data" / "tatoeba"


def _docs(n: int, offset: int = 0) -> list[dict[str, Any]]:
    """``n`` documents, French and German in turn, under an English title."""
    fr = (TATOEBA / "tatoeba.fra-eng.fra").read_text("utf-8").splitlines()
    de = (TATOEBA / "tatoeba.deu-eng.deu").read_text("utf-8").splitlines()
    out = []
    for i in range(offset, offset + n):
        lines = fr if i % 2 == 0 else de
        out.append({"id": f"d{i}", "title": "A sentence", "body": f"{lines[i]} {lines[i + 1]}"})
    return out


def _cos(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _bulk(url: str, index: str, docs: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    """An application's write: plain REST ``_bulk``, no xlidx anywhere."""
    lines = []
    for d in docs:
        src = {k: v for k, v in d.items() if k != "id"}
        lines += [
            json.dumps({"index": {"_index": index, "_id": f"{prefix}{d['id']}"}}),
            json.dumps(src),
        ]
    res = httpx.post(
        f"{url}/_bulk", content="\n".join(lines) + "\n",
        headers={"Content-Type": "application/x-ndjson"}, timeout=120,
    )  # fmt: skip
    res.raise_for_status()
    return dict(res.json())


def _source(url: str, index: str, doc_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/{index}/_doc/{doc_id}").json()["_source"])


@pytest.fixture(scope="module")
def env(
    ml_node: ConnectionSettings, argos_packages_dir: Path, tmp_path_factory: Any
) -> dict[str, str]:
    home = tmp_path_factory.mktemp("connect-home")
    return {
        "XLIDX_URL": ml_node.urls[0],
        "ARGOS_PACKAGES_DIR": str(argos_packages_dir),
        "XLIDX_HOME": str(home),
    }


@pytest.fixture(scope="module")
def index(
    ml_node: ConnectionSettings, tiny_embedder: Any, argos_packages_dir: Path
) -> Iterator[str]:
    """200 documents written by ``xlidx ingest`` (translated into English; fr and de, so the
    index centers)."""
    from xlidx.backends import open_backend
    from xlidx.documents import RawItem
    from xlidx.pipeline.translate import Translator
    from xlidx.workflows.ingest import IngestOptions, ingest

    name = f"xlidx-test-connect-{uuid.uuid4().hex[:8]}"
    items = [RawItem(f"t:{d['id']}", payload=d) for d in _docs(200)]
    summary = ingest(
        items, backend=open_backend(ml_node), embedder=tiny_embedder,
        translator=Translator(argos_packages_dir),
        options=IngestOptions(index=name, text_fields=("title", "body"), translate_to=("en",)),
    )  # fmt: skip
    assert summary.indexed == 200
    yield name
    drop_index(ml_node, name)


@pytest.fixture(scope="module")
def served(index: str, env: dict[str, str], tmp_path_factory: Any) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("connect-serve") / "serve.log"
    with serving("--index", index, "--device", "cpu", "--api-key", KEY, log=log, env=env) as s:
        yield s


@pytest.fixture(scope="module")
def connected(
    index: str, served: Served, env: dict[str, str], ml_node: ConnectionSettings
) -> dict[str, Any]:
    # as a fresh cluster has them: connect must allow private addresses itself, and say so
    reset = {
        "persistent": {
            "plugins.ml_commons.connector.private_ip_enabled": None,
            "plugins.ml_commons.trusted_connector_endpoints_regex": None,
        }
    }
    httpx.put(f"{ml_node.urls[0]}/_cluster/settings", json=reset).raise_for_status()
    res = run_cli(
        "connect", "opensearch", "--index", index, "--serve", served.url, "--api-key", KEY,
        "--json", env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "private address" in res.stderr  # 127.0.0.1: said, and why
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_connect_is_idempotent_and_recorded(
    connected: dict[str, Any],
    index: str,
    served: Served,
    env: dict[str, str],
    ml_node: ConnectionSettings,
) -> None:
    url = ml_node.urls[0]
    assert set(connected["models"]) == {"passage", "query", "translate", "detect", "document"}
    again = run_cli(
        "connect", "opensearch", "--index", index, "--serve", served.url, "--api-key", KEY,
        "--json", env=env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    renewed = json.loads(again.stdout)
    version = renewed["version"]
    meta = httpx.get(f"{url}/{version}/_mapping").json()[version]["mappings"]["_meta"]["xlidx"]
    assert meta["integration"]["models"] == renewed["models"]
    # the models of the first run are gone, those of the second deployed
    for mid in connected["models"].values():
        assert httpx.get(f"{url}/_plugins/_ml/models/{mid}").status_code == 404
    for mid in renewed["models"].values():
        assert httpx.get(f"{url}/_plugins/_ml/models/{mid}").json()["model_state"] == "DEPLOYED"
    settings = httpx.get(f"{url}/{version}/_settings").json()[version]["settings"]["index"]
    assert settings["default_pipeline"] == renewed["ingest_pipeline"]
    assert settings["search"]["default_pipeline"] == renewed["search_pipeline"]
    trusted = httpx.get(f"{url}/_cluster/settings", params={"flat_settings": "true"}).json()
    pattern = trusted["persistent"]["plugins.ml_commons.trusted_connector_endpoints_regex"]
    assert pattern.count(f"^{served.url.replace('.', chr(92) + '.')}/.*$") == 1  # appended once
    connected["models"] = renewed["models"]


def test_plain_writes_match_what_ingest_writes(
    connected: dict[str, Any], index: str, ml_node: ConnectionSettings
) -> None:
    url = ml_node.urls[0]
    docs = _docs(200)
    for start in range(0, 200, 50):
        res = _bulk(url, index, docs[start : start + 50], "app-")
        assert res["errors"] is False
    httpx.post(f"{url}/{index}/_refresh")
    for d in docs:
        ours, theirs = _source(url, index, d["id"]), _source(url, index, f"app-{d['id']}")
        x, y = ours["xlidx"], theirs["xlidx"]
        assert "pending" not in y, y.get("pending")
        assert theirs["i18n"] == ours["i18n"]
        assert y["id"] == f"app-{d['id']}"
        for key in ("lang", "langs", "field_langs", "translated_to", "content_id", "model",
                    "passage_count", "content_hash"):  # fmt: skip
            assert y[key] == x[key], key
        assert len(y["passages"]) == len(x["passages"])
        for p, q in zip(x["passages"], y["passages"], strict=True):
            assert (q["n"], q["lang"], q.get("center")) == (p["n"], p["lang"], p.get("center"))
            assert _cos(p["vector"], q["vector"]) >= 0.999
    assert y["translated_to"] == ["en"]


def test_plain_hybrid_query_ranks_as_xlidx_query(
    connected: dict[str, Any], index: str, ml_node: ConnectionSettings, env: dict[str, str]
) -> None:
    url = ml_node.urls[0]
    httpx.post(f"{url}/{index}/_refresh")
    text = "Where is the railway station, please?"
    want = run_cli("query", text, "--index", index, "--json", "--k", "10", env=env)
    assert want.returncode == 0, want.stderr
    ours = [h["id"] for h in json.loads(want.stdout)["hits"]]
    fields = ["title", "body"]
    bm25 = {
        "bool": {
            "should": [
                {"multi_match": {"query": text, "fields": fields, "type": "best_fields"}},
                {"multi_match": {"query": text, "fields": [f"i18n.{f}.en" for f in fields]}},
            ],
            "minimum_should_match": 1,
        }
    }
    neural = {"query_text": text, "model_id": connected["models"]["query"], "k": 100}
    knn = {
        "nested": {
            "path": "xlidx.passages",
            "score_mode": "max",
            "query": {"neural": {"xlidx.passages.vector": neural}},
        }
    }
    # size: xlidx's candidate window (min-max normalizes over the hits each side returns)
    body = {"size": 100, "_source": False, "query": {"hybrid": {"queries": [bm25, knn]}}}
    got = httpx.post(f"{url}/{index}/_search", json=body, timeout=60).json()
    theirs = [h["_id"] for h in got["hits"]["hits"][:10]]
    assert theirs == ours


def test_bad_input_is_one_line_and_leaves_nothing(
    index: str, served: Served, env: dict[str, str], ml_node: ConnectionSettings,
    dev_node: ConnectionSettings,
) -> None:  # fmt: skip
    url = ml_node.urls[0]

    def models() -> int:
        body = {"query": {"match_all": {}}, "size": 0}
        res = httpx.post(f"{url}/_plugins/_ml/models/_search", json=body).json()
        return int(res["hits"]["total"]["value"])

    before = models()
    plain_env = {**env, "XLIDX_URL": dev_node.urls[0]}
    cases = [
        (["--serve", "http://127.0.0.1:9", "--api-key", KEY], "cannot be reached", env),
        (["--serve", served.url, "--api-key", "wrong"], "refused the API key", env),
        (["--serve", served.url, "--api-key", KEY], "no ml-commons", plain_env),
        (["--serve", "ftp://x", "--api-key", KEY], "not an http(s) URL", env),
    ]  # fmt: skip
    for args, message, case_env in cases:
        res = run_cli("connect", "opensearch", "--index", index, *args, env=case_env)
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode == 1 and len(errors) == 1 and message in errors[0], res.stderr
        assert "Traceback" not in res.stderr
    plain = f"xlidx-test-plain-{uuid.uuid4().hex[:8]}"
    httpx.put(f"{url}/{plain}")
    try:
        res = run_cli("connect", "opensearch", "--index", plain, "--serve", served.url,
                      "--api-key", KEY, env=env)  # fmt: skip
        assert res.returncode == 1 and "plain index" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    finally:
        httpx.delete(f"{url}/{plain}")
    assert models() == before


def test_dry_run_lists_requests_and_sends_none(
    connected: dict[str, Any], index: str, served: Served, env: dict[str, str],
    ml_node: ConnectionSettings,
) -> None:  # fmt: skip
    url = ml_node.urls[0]
    count = {"size": 0, "query": {"match_all": {}}}
    before = httpx.post(f"{url}/_plugins/_ml/connectors/_search", json=count).json()
    dry = run_cli("connect", "opensearch", "--index", index, "--serve", served.url,
                  "--api-key", KEY, "--dry-run", "--json", env=env)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert KEY not in dry.stdout and plan["dry_run"] is True
    paths = [r["path"] for r in plan["requests"]]
    assert paths.count("/_plugins/_ml/connectors/_create") == 5
    assert any(p.startswith("/_ingest/pipeline/") for p in paths)
    after = httpx.post(f"{url}/_plugins/_ml/connectors/_search", json=count).json()
    assert after["hits"]["total"] == before["hits"]["total"]


def test_service_killed_mid_stream_fails_no_write(
    connected: dict[str, Any], index: str, served: Served, ml_node: ConnectionSettings,
    env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    import signal

    url = ml_node.urls[0]
    docs = _docs(120, offset=300)
    results: list[dict[str, Any]] = []

    def write() -> None:
        for start in range(0, len(docs), 5):
            results.append(_bulk(url, index, docs[start : start + 5], "kill-"))
            time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(1.0)
    served.proc.send_signal(signal.SIGKILL)
    writer.join(120)
    assert len(results) == 24 and not any(r["errors"] for r in results)
    httpx.post(f"{url}/{index}/_refresh")
    pending = {"query": {"exists": {"field": "xlidx.pending"}}}
    n_pending = httpx.post(f"{url}/{index}/_count", json=pending).json()["count"]
    assert n_pending > 0  # written while the service was down: indexed, marked
    # still searchable with BM25
    hit = httpx.post(
        f"{url}/{index}/_search", json={"query": {"match": {"body": docs[-1]["body"]}}}
    )
    assert hit.json()["hits"]["hits"][0]["_id"] == f"kill-{docs[-1]['id']}"
    log = tmp_path / "serve-again.log"
    port = int(served.url.rsplit(":", 1)[1])  # where the connectors call it
    args = ("--index", index, "--device", "cpu", "--api-key", KEY)
    with serving(*args, log=log, env=env, port=port):
        res = run_cli("enrich", index, "--pending", "--json", env=env)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["indexed"] == n_pending
        again = run_cli("enrich", index, "--pending", "--json", env=env)
        assert json.loads(again.stdout)["read"] == 0  # once
        _bulk(url, index, _docs(1, offset=500), "after-")  # enriched by the pipeline again
    httpx.post(f"{url}/{index}/_refresh")
    assert httpx.post(f"{url}/{index}/_count", json=pending).json()["count"] == 0
    for d in [*docs, *_docs(1, offset=500)]:
        prefix = "after-" if d["id"] == "d500" else "kill-"
        x = _source(url, index, f"{prefix}{d['id']}")["xlidx"]
        assert x["passages"] and x["translated_to"] == ["en"], d["id"]


def test_migrate_carries_the_pipelines(
    connected: dict[str, Any], index: str, served: Served, env: dict[str, str],
    ml_node: ConnectionSettings, tmp_path: Path,
) -> None:  # fmt: skip
    url = ml_node.urls[0]
    res = run_cli("index", "migrate", index, "--json", env=env)
    assert res.returncode == 0, res.stderr
    new = json.loads(res.stdout)["to"]
    settings = httpx.get(f"{url}/{new}/_settings").json()[new]["settings"]["index"]
    assert settings["default_pipeline"] == f"xlidx-{index}-ingest"
    assert settings["search"]["default_pipeline"] == f"xlidx-{index}-search"
    meta = httpx.get(f"{url}/{new}/_mapping").json()[new]["mappings"]["_meta"]["xlidx"]
    assert meta["integration"]["ingest_pipeline"] == f"xlidx-{index}-ingest"
    port = int(served.url.rsplit(":", 1)[1])
    args = ("--index", index, "--device", "cpu", "--api-key", KEY)
    with serving(*args, log=tmp_path / "serve.log", env=env, port=port):
        _bulk(url, index, _docs(1, offset=600), "migrated-")
    x = _source(url, index, "migrated-d600")["xlidx"]
    assert x["passages"] and "pending" not in x


def test_remove_takes_all_away(
    connected: dict[str, Any], index: str, env: dict[str, str], ml_node: ConnectionSettings
) -> None:
    url = ml_node.urls[0]
    gone = run_cli("connect", "opensearch", "--index", index, "--remove", "--json", env=env)
    assert gone.returncode == 0, gone.stderr
    result = json.loads(gone.stdout)
    version = result["version"]  # the version the alias points at: migrated above
    assert result["removed"] is True and result["models"] == connected["models"]
    for v in (version, f"{index}-v1"):  # the version kept for rollback too
        settings = httpx.get(f"{url}/{v}/_settings").json()[v]["settings"]["index"]
        assert "default_pipeline" not in settings
        meta = httpx.get(f"{url}/{v}/_mapping").json()[v]["mappings"]["_meta"]["xlidx"]
        assert "integration" not in meta
    for mid in result["models"].values():
        assert httpx.get(f"{url}/_plugins/_ml/models/{mid}").status_code == 404
    assert httpx.get(f"{url}/_ingest/pipeline/xlidx-{index}-ingest").status_code == 404
    # the cluster's settings as they were: ml-commons' own defaults, nothing private
    persistent = httpx.get(f"{url}/_cluster/settings", params={"flat_settings": "true"}).json()
    assert not [k for k in persistent["persistent"] if k.startswith("plugins.ml_commons")]
    again = run_cli("connect", "opensearch", "--index", index, "--remove", env=env)
    assert again.returncode == 0 and "nothing to remove" in again.stdout
