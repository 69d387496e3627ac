"""`xlidx query` against the real dev node: both fusion paths agree; hostile input is inert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from xlidx.backends import open_backend
from xlidx.backends.opensearch.client import make_client
from xlidx.config import ConnectionSettings
from xlidx.documents import RawItem
from xlidx.query.plan import Query
from xlidx.search import Searcher
from xlidx.workflows.ingest import IngestOptions, ingest

pytestmark = pytest.mark.integration

DOCS = [
    {
        "id": "en-cat",
        "lang": "en",
        "title": "The cat",
        "body": "The cat sleeps on the sofa all day.",
    },
    {
        "id": "en-dog",
        "lang": "en",
        "title": "The dog",
        "body": "The dog runs in the park after the ball.",
    },
    {
        "id": "fr-chat",
        "lang": "fr",
        "title": "Le chat",
        "body": "Le chat dort sur le canapé toute la journée.",
    },
    {
        "id": "fr-train",
        "lang": "fr",
        "title": "Le train",
        "body": "Le train part de la gare à huit heures.",
    },
    {
        "id": "de-katze",
        "lang": "de",
        "title": "Die Katze",
        "body": "Die Katze schläft den ganzen Tag auf dem Sofa.",
    },
    {
        "id": "es-cafe",
        "lang": "es",
        "title": "El café",
        "body": "Me gusta el café solo por la mañana.",
        "year": 2021,
    },
]


@pytest.fixture(scope="module")
def query_index(dev_node: ConnectionSettings, tiny_embedder: Any) -> Any:
    import uuid

    name = f"xlidx-q-{uuid.uuid4().hex[:8]}"
    client = make_client(dev_node)
    items = [RawItem(f"docs:{i}", payload=d) for i, d in enumerate(DOCS, start=1)]
    summary = ingest(
        items,
        backend=open_backend(dev_node),
        options=IngestOptions(index=name, languages=("en", "fr", "de", "es")),
        embedder=tiny_embedder,
    )
    assert summary.indexed == len(DOCS)
    yield name
    client.indices.delete(index=f"{name}-v1", ignore_unavailable=True)


def _ids(result: Any) -> list[str]:
    return [h.id for h in result.hits]


@pytest.mark.parametrize(
    ("fusion", "weights"), [("minmax", [0.3, 0.7]), ("minmax", [0.5, 0.5]), ("rrf", [1, 1])]
)
def test_server_and_client_fusion_agree(
    dev_node: ConnectionSettings,
    tiny_embedder: Any,
    query_index: str,
    fusion: str,
    weights: list[float],
) -> None:
    searcher = Searcher(open_backend(dev_node), query_index, embedder=tiny_embedder)
    assert "minmax" in searcher.backend.capabilities().server_fusion  # neural-search
    q = Query("the cat sleeps on the sofa").k(6).fusion(fusion, weights)
    server = searcher.search(q, fuse_on="server")
    client = searcher.search(q, fuse_on="client")
    assert server.fused_on == "server" and client.fused_on == "client"
    assert _ids(server) == _ids(client)
    for a, b in zip(server.hits, client.hits, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-4, abs=1e-6)


def test_modes_filters_and_paging(
    dev_node: ConnectionSettings, tiny_embedder: Any, query_index: str
) -> None:
    searcher = Searcher(open_backend(dev_node), query_index, embedder=tiny_embedder)
    bm25 = searcher.search(Query("cat").mode("bm25").query_lang("en"))
    assert _ids(bm25)[0] == "en-cat"
    knn = searcher.search(Query("cat").mode("knn").k(6))
    assert len(knn.hits) == 6
    only_fr = searcher.search(Query("cat").langs("fr").k(6))
    assert {h.lang for h in only_fr.hits} == {"fr"}
    ranged = searcher.search(Query("coffee").range("year", gte=2020).k(6))
    assert _ids(ranged) == ["es-cafe"]
    page1 = searcher.search(Query("cat").mode("knn").k(2))
    page2 = searcher.search(Query("cat").mode("knn").k(2).offset(2))
    assert _ids(page1) == _ids(knn)[:2] and _ids(page2) == _ids(knn)[2:4]


@pytest.mark.parametrize(
    "hostile",
    [
        'title:"x" OR *:*',
        "body:/.*/ AND _exists_:secret",
        "\\\\ ** ~ ^2 [a TO z] && || ! {",
        ")))(((",
    ],
)
def test_hostile_queries_are_just_text(
    dev_node: ConnectionSettings, tiny_embedder: Any, query_index: str, hostile: str
) -> None:
    searcher = Searcher(open_backend(dev_node), query_index, embedder=tiny_embedder)
    res = searcher.search(Query(hostile).mode("bm25").query_lang("en").k(6))
    assert len(res.hits) < len(DOCS)  # not a match-all


def test_translated_query_reaches_other_languages(
    dev_node: ConnectionSettings, tiny_embedder: Any, argos_packages_dir: Path
) -> None:
    """--translate-query: an English query is also matched, translated, in French fields."""
    import uuid

    from tests.fixtures.translation import FR_EN_PAIRS
    from xlidx.pipeline.translate import Translator

    fr, en = FR_EN_PAIRS[0]  # ("Le chat dort.", "The cat sleeps.")
    name = f"xlidx-tq-{uuid.uuid4().hex[:8]}"
    client = make_client(dev_node)
    docs = [
        {"id": "fr", "lang": "fr", "body": fr},
        {"id": "fr-other", "lang": "fr", "body": FR_EN_PAIRS[3][0]},
    ]
    ingest(
        [RawItem(f"d:{i}", payload=d) for i, d in enumerate(docs)],
        backend=open_backend(dev_node),
        options=IngestOptions(index=name, languages=("en", "fr")),
        embedder=tiny_embedder,
    )
    try:
        translator = Translator(argos_packages_dir)
        searcher = Searcher(
            open_backend(dev_node), name, embedder=tiny_embedder, translator=translator
        )
        plain = searcher.search(Query(en).mode("bm25").query_lang("en"))
        assert plain.hits == []  # no French text matches English words
        translated = searcher.search(Query(en).mode("bm25").query_lang("en"), translate=True)
        assert translated.translations == {"fr": fr}
        assert translated.hits[0].id == "fr"
    finally:
        client.indices.delete(index=f"{name}-v1", ignore_unavailable=True)


def test_cli_json_and_errors(
    dev_node: ConnectionSettings, tiny_st_model: Path, query_index: str
) -> None:
    env = {"XLIDX_URL": dev_node.urls[0], "HF_HUB_OFFLINE": "1"}
    proc = run_cli("query", "Le chat dort", "--index", query_index, "--json", "--explain", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["mode"] == "hybrid" and isinstance(data["took_ms"], float)
    assert {"id", "score", "lang", "source", "explain"} <= set(data["hits"][0])
    assert "passages" not in data["hits"][0]["source"]["xlidx"]  # vectors are not sent back

    table = run_cli("query", "cat", "--index", query_index, "--k", "3", env=env)
    assert table.returncode == 0 and "rank" in table.stdout
    only_title = run_cli(
        "query", "cat", "--index", query_index, "--json", "--source", "title", env=env
    )
    src = json.loads(only_title.stdout)["hits"][0]["source"]
    assert "title" in src and "body" not in src

    missing = run_cli("query", "cat", "--index", "no-such-index", env=env)
    assert missing.returncode == 1 and "no xlidx index named 'no-such-index'" in missing.stderr
    bad = run_cli("query", "cat", "--index", query_index, "--weights", "x,y", env=env)
    assert bad.returncode == 1 and "invalid --weights" in bad.stderr
    empty = run_cli("query", "  ", "--index", query_index, env=env)
    assert empty.returncode == 1 and "the query text is empty" in empty.stderr
