"""The dev node really does k-NN: a 384-d lucene/cosine index returns the nearest document first."""

from __future__ import annotations

import json
import random

import pytest

from tests.conftest import REPO
from xlidx.backends.opensearch.client import make_client
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration

DIM = 384


def _unit(v: list[float]) -> list[float]:
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def test_knn_returns_nearest_first(dev_node: ConnectionSettings, index_name: str) -> None:
    client = make_client(dev_node)
    body = json.loads((REPO / "mappings" / "smoke-knn.v1.json").read_text())
    client.indices.create(index=index_name, body=body)

    rng = random.Random(7)
    docs = {f"doc-{i}": _unit([rng.gauss(0, 1) for _ in range(DIM)]) for i in range(8)}
    for doc_id, vec in docs.items():
        client.index(index=index_name, id=doc_id, body={"title": doc_id, "vector": vec})
    client.indices.refresh(index=index_name)

    target = docs["doc-5"]
    query = _unit([x + rng.gauss(0, 0.05) for x in target])  # a slightly perturbed doc-5
    res = client.search(
        index=index_name,
        body={"size": 3, "query": {"knn": {"vector": {"vector": query, "k": 3}}}},
    )
    hits = res["hits"]["hits"]
    assert hits[0]["_id"] == "doc-5"
    assert hits[0]["_score"] > hits[1]["_score"]

    mapping = client.indices.get_mapping(index=index_name)[index_name]["mappings"]
    vector = mapping["properties"]["vector"]
    assert vector["dimension"] == DIM
    assert vector["method"]["engine"] == "lucene"
    assert vector["method"]["space_type"] == "cosinesimil"
