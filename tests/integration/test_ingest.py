"""`xlidx ingest` / `xlidx index` end to end: the real dev node, real model files built here.

Every bad-input case of the ingest issue is fed in one file next to good records: the good
ones are indexed, each bad one is dead-lettered with its reason, and the run exits 2.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, run_cli
from tests.fixtures.translation import FR_EN_PAIRS
from xlidx.backends.opensearch.client import make_client
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def env(dev_node: ConnectionSettings, argos_packages_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "XLIDX_URL": dev_node.urls[0],
        "ARGOS_PACKAGES_DIR": str(argos_packages_dir),
        "XLIDX_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
    }


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
        + "\n"
    )
    return path


def _summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _docs(settings: ConnectionSettings, index: str) -> dict[str, dict[str, Any]]:
    client = make_client(settings)
    client.indices.refresh(index=index)
    res = client.search(index=index, body={"size": 1000, "query": {"match_all": {}}})
    return {h["_id"]: h["_source"] for h in res["hits"]["hits"]}


FR_TEXT = " ".join(fr for fr, _ in FR_EN_PAIRS[:3])
EN_TEXT = " ".join(en for _, en in FR_EN_PAIRS[:3])


def test_ingest_good_and_bad_records(
    env: dict[str, str],
    tiny_st_model: Path,
    index_name: str,
    dev_node: ConnectionSettings,
    tmp_path: Path,
) -> None:
    src = tmp_path / "docs.jsonl"
    good = [
        {"id": "fr-1", "title": "Voyage", "body": FR_TEXT, "year": 2024},
        {
            "id": "en-1",
            "title": "Travel",
            "body": "The cat sleeps on the warm windowsill all afternoon long.",
        },
        {"id": "und-1", "body": "1234 5678 !!!"},  # undetectable: indexed as und, not translated
        {"id": "long-1", "body": " ".join(["This sentence keeps going with many words."] * 30)},
    ]
    lines: list[Any] = [*good]
    lines += [
        '{"id": "bad-json", "title": ',  # malformed JSON
        "[1, 2, 3]",  # not an object
        {"id": "no-text", "year": 1},  # missing text
        {"id": "empty", "title": "", "body": "  "},  # empty text
        {"id": "wrong-type", "body": {"nested": True}},  # wrong type
        {"id": "fr-1", "title": "dup", "body": "Duplicate id in the same batch."},  # duplicate id
        {"id": "huge", "body": "x" * (10 * 1024 * 1024)},  # a 10 MB document
    ]
    _jsonl(src, lines)
    with src.open("ab") as fh:
        fh.write(b'{"id": "bad-utf8", "body": "caf\xe9 au lait"}\n')  # invalid UTF-8
    dead = tmp_path / "dead.jsonl"

    proc = run_cli(
        "ingest",
        str(src),
        "--index",
        index_name,
        "--model",
        str(tiny_st_model),
        "--translate-to",
        "en",
        "--dead-letter",
        str(dead),
        "--json",
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    summary = _summary(proc)
    assert summary["read"] == 12
    assert summary["indexed"] == 4
    assert summary["dead_lettered"] == 8
    assert summary["unchanged"] == 0

    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    reasons = {(d["id"] or d["origin"]): (d["stage"], d["reason"]) for d in letters}
    assert reasons["docs.jsonl:5"][0] == "read" and "malformed JSON" in reasons["docs.jsonl:5"][1]
    assert "expected a JSON object, got list" in reasons["docs.jsonl:6"][1]
    assert "no text" in reasons["no-text"][1] and "no text" in reasons["empty"][1]
    assert "must be a string, got dict" in reasons["wrong-type"][1]
    assert "duplicate id 'fr-1'" in reasons["fr-1"][1]
    assert "over the" in reasons["huge"][1] and "MB limit" in reasons["huge"][1]
    assert "not valid UTF-8" in reasons["docs.jsonl:12"][1]
    for d in letters:  # nothing lost: each letter carries its record
        assert d["record"] is not None

    docs = _docs(dev_node, index_name)
    assert set(docs) == {"fr-1", "en-1", "und-1", "long-1"}
    fr = docs["fr-1"]
    assert fr["xlidx"]["lang"] == "fr"
    assert fr["body"] == FR_TEXT  # the original stays
    assert fr["i18n"]["body"]["fr"] == FR_TEXT
    assert fr["i18n"]["body"]["en"] == EN_TEXT  # exact, from the over-trained package
    assert fr["year"] == 2024
    assert docs["en-1"]["xlidx"]["translated_to"] == []  # already English
    und = docs["und-1"]["xlidx"]
    assert und["lang"] == "und" and und["translated_to"] == []
    assert docs["long-1"]["xlidx"]["passage_count"] > 1  # split, not truncated
    assert all(len(p["vector"]) == 32 for p in docs["long-1"]["xlidx"]["passages"])

    # re-ingesting the same file changes nothing and is cheap
    again = run_cli(
        "ingest",
        str(src),
        "--index",
        index_name,
        "--model",
        str(tiny_st_model),
        "--translate-to",
        "en",
        "--dead-letter",
        str(tmp_path / "dead2.jsonl"),
        "--json",
        env=env,
    )
    s2 = _summary(again)  # the checkpoint: nothing is read again, bad records included
    assert (s2["read"], s2["resumed_after"], s2["dead_lettered"]) == (0, 12, 0)
    whole = run_cli(
        "ingest", str(src), "--index", index_name, "--model", str(tiny_st_model),
        "--translate-to", "en", "--dead-letter", str(tmp_path / "dead3.jsonl"), "--from-start",
        "--json", env=env,
    )  # fmt: skip
    s3 = _summary(whole)
    assert (s3["indexed"], s3["unchanged"], s3["dead_lettered"]) == (0, 4, 8)


def test_status_create_and_migrate(
    env: dict[str, str],
    tiny_st_model: Path,
    index_name: str,
    dev_node: ConnectionSettings,
    tmp_path: Path,
) -> None:
    created = run_cli(
        "index", "create", index_name, "--model", str(tiny_st_model), "--json", env=env
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {
        "name": index_name,
        "index": f"{index_name}-v1",
        "created": True,
    }
    src = _jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": f"d{i}", "lang": "en", "title": f"Document {i}", "body": "Some text."}
            for i in range(25)
        ],
    )
    ok = run_cli("ingest", str(src), "--index", index_name, "--model", str(tiny_st_model), env=env)
    assert ok.returncode == 0, ok.stderr
    assert "indexed 25" in ok.stdout

    status = json.loads(run_cli("index", "status", index_name, "--json", env=env).stdout)
    assert status["version"] == 1 and status["documents"] == 25
    assert status["languages"] == {"en": 25}
    assert status["dimension"] == 32 and status["vector"]["engine"] == "lucene"

    # another model is refused, with the way out in the message
    refused = run_cli("ingest", str(src), "--index", index_name, "--model", "usem3", env=env)
    assert refused.returncode == 1
    assert "refusing to use 'usem3'" in refused.stderr and "xlidx index migrate" in refused.stderr

    migrated = run_cli("index", "migrate", index_name, "--model", "usem3", "--json", env=env)
    assert migrated.returncode == 0, migrated.stderr
    report = json.loads(migrated.stdout)
    assert report["to"] == f"{index_name}-v2" and report["documents"] == 25
    status = json.loads(run_cli("index", "status", index_name, "--json", env=env).stdout)
    assert status["version"] == 2 and status["documents"] == 25 and status["dimension"] == 512
    assert status["versions"] == [f"{index_name}-v1", f"{index_name}-v2"]  # v1 kept
    # the migrated index knows its documents are up to date for the new model
    again = _summary(run_cli("ingest", str(src), "--index", index_name, "--json", env=env))
    assert (again["indexed"], again["unchanged"]) == (0, 25)
    make_client(dev_node).indices.delete(
        index=f"{index_name}-v1,{index_name}-v2", ignore_unavailable=True
    )


def test_other_sources(
    env: dict[str, str],
    tiny_st_model: Path,
    index_name: str,
    dev_node: ConnectionSettings,
    tmp_path: Path,
) -> None:
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("id,title,body\nc1,Hallo,Die Katze schläft.\nc2,Salut,Il fait beau.\n")
    d = tmp_path / "texts"
    d.mkdir()
    (d / "a.txt").write_text("Where is the station?")
    (d / "b.md").write_text("# Note\nI like black coffee.")
    model = ["--model", str(tiny_st_model)]
    assert run_cli("ingest", str(csv_file), "--index", index_name, *model, env=env).returncode == 0
    assert run_cli("ingest", str(d), "--index", index_name, *model, env=env).returncode == 0
    stdin = subprocess.run(
        [*_cli_prefix(), "ingest", "-", "--index", index_name, *model, "--json"],
        input='{"id": "s1", "body": "From standard input."}\n',
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        check=False,
    )
    assert stdin.returncode == 0, stdin.stderr
    assert set(_docs(dev_node, index_name)) == {"c1", "c2", "a.txt", "b.md", "s1"}

    # enrich what a cluster already holds: a plain index read with scroll
    client = make_client(dev_node)
    plain = f"{index_name}-plain"
    client.indices.create(index=plain)
    for i in range(3):
        client.index(index=plain, id=f"p{i}", body={"text": f"Plain document number {i}.", "n": i})
    client.indices.refresh(index=plain)
    target = f"{index_name}-enriched"
    proc = run_cli("ingest", "--from-index", plain, "--index", target, *model, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert _summary(proc)["indexed"] == 3
    enriched = _docs(dev_node, target)
    assert enriched["p1"]["n"] == 1 and enriched["p1"]["text"] == "Plain document number 1."
    client.indices.delete(index=f"{plain},{target}-v1", ignore_unavailable=True)


def _cli_prefix() -> list[str]:
    import sys

    return [sys.executable, "-m", "xlidx"]


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("XLIDX_")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--translate-to", "xx"], "unknown language code 'xx'"),
        (["--model", "/nonexistent/model-dir"], "model path does not exist"),
        (["--index", "Bad Name"], "invalid index name"),
        (["--format", "xml"], "unknown --format 'xml'"),
    ],
)
def test_fatal_input_errors_are_one_line(
    env: dict[str, str], tmp_path: Path, index_name: str, args: list[str], message: str
) -> None:
    src = _jsonl(tmp_path / "d.jsonl", [{"id": "a", "body": "text"}])
    base = ["ingest", str(src)]
    if "--index" not in args:
        base += ["--index", index_name]
    proc = run_cli(*base, *args, env=env)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


def test_cluster_down_is_one_line(tmp_path: Path, tiny_st_model: Path) -> None:
    src = _jsonl(tmp_path / "d.jsonl", [{"id": "a", "body": "text"}])
    port = free_port()
    proc = run_cli(
        "--url",
        f"http://127.0.0.1:{port}",
        "ingest",
        str(src),
        "--index",
        "docs",
        "--model",
        str(tiny_st_model),
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot connect to http://127.0.0.1:{port}" in lines[0]
