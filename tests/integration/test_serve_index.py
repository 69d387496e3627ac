"""``xlidx serve`` over a real index, on both engines: ``xlidx/<index>:passage`` vectors are
those ingest stored (centered with the index's calibration), ``:query`` vectors are those
``xlidx query`` searches with, a new calibration is seen without a restart, and
``/indices/{name}/search`` (and ``xlidx query --serve``) answer exactly ``xlidx query --json``.
"""

from __future__ import annotations

import json
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

pytestmark = pytest.mark.integration

TEXTS = [
    "The cat sleeps on the warm windowsill.",
    "The night train leaves at nine.",
    "Bread needs a long fermentation.",
    "Le chat dort sur le rebord chaud.",
    "Le train de nuit part à neuf heures.",
    "Le pain demande une longue fermentation.",
]


def _cos(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module", params=["dev_node", "es_node"])
def engine(request: pytest.FixtureRequest) -> ConnectionSettings:
    settings: ConnectionSettings = request.getfixturevalue(request.param)
    return settings


@pytest.fixture(scope="module")
def centered_index(
    engine: ConnectionSettings, tiny_st_model: Path, tiny_embedder: Any
) -> Iterator[str]:
    """Six documents (en, fr; languages detected by ingest), calibrated to center."""
    from xlidx.backends import open_backend
    from xlidx.documents import RawItem
    from xlidx.workflows import Cluster
    from xlidx.workflows.ingest import IngestOptions, ingest

    name = f"xlidx-test-serve-{uuid.uuid4().hex[:8]}"
    items = [
        RawItem(origin=f"t:{i}", payload={"id": f"d{i}", "text": t}) for i, t in enumerate(TEXTS)
    ]
    backend = open_backend(engine)
    ingest(
        items,
        backend=backend,
        embedder=tiny_embedder,
        options=IngestOptions(index=name, languages=("en", "fr")),
    )
    done = (
        Cluster(backend).index(name).calibrate(centering="on", min_docs=2, embedder=tiny_embedder)
    )
    assert done.to_json()["centering"] is True
    yield name
    drop_index(engine, name)


@pytest.fixture(scope="module")
def served(
    engine: ConnectionSettings, centered_index: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("serve-index") / "serve.log"
    env = {"XLIDX_URL": engine.urls[0]}
    with serving("--index", centered_index, "--device", "cpu", log=log, env=env) as s:
        yield s


def _stored(engine: ConnectionSettings, index: str) -> dict[str, list[float]]:
    from xlidx.backends import open_backend

    backend = open_backend(engine)
    backend.refresh(index)
    hits = httpx.post(
        f"{engine.urls[0]}/{index}/_search",
        json={"size": 100, "_source": ["text", "xlidx.passages"]},
    ).json()
    return {
        h["_source"]["text"]: h["_source"]["xlidx"]["passages"][0]["vector"]
        for h in hits["hits"]["hits"]
    }


def test_passage_and_query_vectors_match_ingest_and_query(
    served: Served, engine: ConnectionSettings, centered_index: str, tiny_embedder: Any
) -> None:
    from openai import OpenAI

    from xlidx.backends import open_backend
    from xlidx.query.plan import Query
    from xlidx.workflows import Cluster

    client = OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    stored = _stored(engine, centered_index)
    got = client.embeddings.create(model=f"xlidx/{centered_index}:passage", input=TEXTS)
    raw = tiny_embedder.encode_document(TEXTS)
    for text, d in zip(TEXTS, got.data, strict=True):
        assert _cos(d.embedding, stored[text]) >= 0.999, text
        assert abs(float(np.linalg.norm(d.embedding)) - 1.0) < 1e-4
    assert min(_cos(d.embedding, r) for d, r in zip(got.data, raw, strict=True)) < 0.99  # centered

    # the query role, by name or by input_type, is the vector `xlidx query` searches with
    searcher = Cluster(open_backend(engine)).index(centered_index).searcher("cpu")
    queries = ["where does the cat sleep", "quand part le train"]
    want = [searcher.prepare(Query(q))[0].plan().vector for q in queries]
    by_name = client.embeddings.create(model=f"xlidx/{centered_index}:query", input=queries)
    by_type = httpx.post(
        served.url + "/v1/embeddings",
        json={"model": f"xlidx/{centered_index}", "input": queries, "input_type": "search"},
    ).json()
    tei = httpx.post(served.url + "/embed", json={"inputs": queries, "input_type": "search"})
    for i, w in enumerate(want):
        assert _cos(by_name.data[i].embedding, w) >= 0.999
        assert _cos(by_type["data"][i]["embedding"], w) >= 0.999
        assert _cos(tei.json()[i], w) >= 0.999
    missing = httpx.post(
        served.url + "/v1/embeddings", json={"model": "xlidx/xlidx-test-none:query", "input": "x"}
    )
    assert missing.status_code == 404 and "no xlidx index" in missing.json()["error"]["message"]
    models = [m.id for m in client.models.list().data]
    assert f"xlidx/{centered_index}:query" in models and not any("none" in m for m in models)


def test_search_is_xlidx_query_json(
    served: Served, engine: ConnectionSettings, centered_index: str
) -> None:
    env = {"XLIDX_URL": engine.urls[0]}
    for text, options in (
        ("sleeping cat", {}),
        ("train de nuit", {"mode": "bm25", "k": 3}),
        ("pain", {"mode": "knn", "explain": True}),
    ):
        flags = [f"--{k}" if v is True else f"--{k}={v}" for k, v in options.items()]
        local = run_cli("query", text, "--index", centered_index, "--json", *flags, env=env)
        assert local.returncode == 0, local.stderr
        remote = httpx.post(
            f"{served.url}/indices/{centered_index}/search",
            json={"text": text, **options},
            timeout=60,
        )
        assert remote.status_code == 200, remote.text
        via = run_cli(
            "query",
            text,
            "--index",
            centered_index,
            "--json",
            *flags,
            "--serve",
            served.url,
            env=env,
        )
        assert via.returncode == 0, via.stderr
        for answer in (remote.json(), json.loads(via.stdout)):
            mine = json.loads(local.stdout)
            answer.pop("took_ms"), mine.pop("took_ms")
            if "explain" in mine:
                for side in (mine, answer):
                    side["explain"].pop("encode_ms"), side["explain"].pop("translate_ms")
            assert answer == mine
    table = run_cli(
        "query", "sleeping cat", "--index", centered_index, "--serve", served.url, env=env
    )
    assert table.returncode == 0 and "hits in" in table.stdout and "d0" in table.stdout
    bad = httpx.post(f"{served.url}/indices/{centered_index}/search", json={"text": "x", "k": 0})
    assert bad.status_code == 400 and "k must be between 1 and 1000" in bad.json()["error"]
    wrong = httpx.post(f"{served.url}/indices/{centered_index}/search", json={"text": "x", "kk": 1})
    assert wrong.status_code == 422 and "kk" in wrong.json()["error"]
    rows = httpx.get(f"{served.url}/indices").json()
    assert any(centered_index in json.dumps(r) for r in rows)
    status = httpx.get(f"{served.url}/indices/{centered_index}").json()
    assert status["name"] == centered_index and status["documents"] == len(TEXTS)
    assert httpx.get(f"{served.url}/indices/xlidx-test-none").status_code == 404


def test_a_new_calibration_is_seen_without_a_restart(
    served: Served, engine: ConnectionSettings, centered_index: str, tiny_embedder: Any
) -> None:
    from xlidx.backends import open_backend
    from xlidx.workflows import Cluster

    model = f"xlidx/{centered_index}:passage"
    before = httpx.post(served.url + "/embed", json={"inputs": TEXTS[:1], "model": model}).json()
    Cluster(open_backend(engine)).index(centered_index).calibrate(
        centering="off", min_docs=2, embedder=tiny_embedder
    )
    time.sleep(5.5)  # the service reads the index again after 5 s
    after = httpx.post(served.url + "/embed", json={"inputs": TEXTS[:1], "model": model}).json()
    raw = tiny_embedder.encode_document(TEXTS[:1])[0]
    assert _cos(before[0], raw) < 0.99 and _cos(after[0], raw) >= 0.9999
    assert _cos(after[0], _stored(engine, centered_index)[TEXTS[0]]) >= 0.999


def test_enrich_answers_what_ingest_stored_and_refuses_bad_input(
    served: Served, engine: ConnectionSettings, centered_index: str
) -> None:
    url = f"{served.url}/indices/{centered_index}/enrich"
    docs = [{"id": "d0", "source": {"text": TEXTS[0]}}, {"id": "x", "source": {"other": 1}}]
    got = httpx.post(url, json={"documents": docs}, timeout=60)
    assert got.status_code == 200, got.text
    made, refused = got.json()["documents"]
    stored = httpx.get(f"{engine.urls[0]}/{centered_index}/_doc/d0").json()["_source"]
    assert made["i18n"] == stored["i18n"]
    assert made["xlidx"]["content_hash"] == stored["xlidx"]["content_hash"]
    assert (
        _cos(made["xlidx"]["passages"][0]["vector"], stored["xlidx"]["passages"][0]["vector"])
        >= 0.999
    )
    assert refused["id"] == "x" and refused["error"].startswith("no text"), refused
    missing = httpx.post(f"{served.url}/indices/xlidx-test-none/enrich", json={"documents": docs})
    assert missing.status_code == 404 and "no xlidx index" in missing.json()["error"]
    bad = httpx.post(url, json={"documents": [{"id": "d0"}]})
    assert bad.status_code == 422 and "source" in bad.json()["error"]
    assert httpx.post(url, json={"documents": []}).json() == {"documents": []}
