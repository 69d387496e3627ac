"""Reading and validating input: every bad record becomes a dead letter with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlidx.documents import DeadLetter, RawItem, Record, to_record
from xlidx.errors import ConfigError
from xlidx.pipeline.sources import open_source, read_csv, read_dir, read_jsonl


def _jsonl(tmp_path: Path, lines: list[bytes]) -> Path:
    p = tmp_path / "in.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    return p


def test_jsonl_good_and_bad_lines(tmp_path: Path) -> None:
    p = _jsonl(
        tmp_path,
        [
            b'{"id": "a", "title": "Hello"}',
            b"",
            b'{"id": "b", "title": ',  # malformed
            b"[1, 2]",  # not an object
            b'{"id": "c", "body": "caf\xff"}',  # invalid UTF-8
        ],
    )
    items = list(read_jsonl(p))
    assert [i.origin for i in items] == ["in.jsonl:1", "in.jsonl:3", "in.jsonl:4", "in.jsonl:5"]
    assert items[0].payload == {"id": "a", "title": "Hello"}
    assert items[1].error is not None and items[1].error.startswith("malformed JSON")
    assert items[2].payload == [1, 2]
    assert items[3].error == "not valid UTF-8 (byte 0xff at offset 24)"
    assert items[3].raw is not None and "\\xff" in items[3].raw
    records = [to_record(i) for i in items]
    assert isinstance(records[0], Record)
    assert [r.stage for r in records[1:] if isinstance(r, DeadLetter)] == [
        "read",
        "validate",
        "read",
    ]
    assert (
        isinstance(records[2], DeadLetter)
        and "expected a JSON object, got list" in records[2].reason
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"id": "x"}, "no text: fields title, body, text are missing or empty"),
        ({"id": "x", "title": "  ", "body": ""}, "no text"),
        ({"id": "x", "body": ["a", "b"]}, "text field 'body' must be a string, got list"),
        ({"id": "x", "title": 42}, "text field 'title' must be a string, got int"),
        ({"id": {"a": 1}, "title": "t"}, "field 'id' must be a string or an integer, got dict"),
        ({"id": True, "title": "t"}, "must be a string or an integer, got bool"),
        ({"id": "", "title": "t"}, "must be 1 to 512 bytes"),
        ({"title": "t", "lang": "english"}, "field 'lang' must be an ISO 639 code"),
        ({"title": "t", "xlidx": {}}, "reserved by xlidx: xlidx"),
    ],
)
def test_bad_records(payload: dict[str, object], reason: str) -> None:
    out = to_record(RawItem("f:1", payload=payload))
    assert isinstance(out, DeadLetter), out
    assert reason in out.reason
    assert out.record == payload  # nothing lost
    json.loads(out.to_json())  # a dead letter is always valid JSON


def test_huge_document_is_dead_lettered() -> None:
    out = to_record(RawItem("f:1", payload={"id": "big", "body": "x" * (10 * 1024 * 1024)}))
    assert isinstance(out, DeadLetter)
    assert "10.5 MB, over the 5.2 MB limit" in out.reason


def test_record_ids_and_hashes() -> None:
    a = to_record(RawItem("f:1", payload={"title": "Hi", "body": "there", "year": 2020}))
    b = to_record(RawItem("f:2", payload={"body": "there", "year": 2020, "title": "Hi"}))
    assert isinstance(a, Record) and isinstance(b, Record)
    assert a.id == b.id and len(a.id) == 32  # stable hash of the content, order-free
    assert a.extra == {"year": 2020}
    c = to_record(RawItem("f:3", payload={"id": 7, "title": "Hi", "lang": "EN"}))
    assert isinstance(c, Record) and c.id == "7" and c.lang == "en"
    d = to_record(
        RawItem("f:1", payload={"title": "Hi", "body": "there", "year": 2020}),
        pipeline_fingerprint="m2",
    )
    assert isinstance(d, Record) and d.id == a.id and d.content_hash != a.content_hash


def test_csv(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_bytes(
        b'id,title,body\n1,Hello,"multi\nline"\n2,Bad,caf\xe9\n3,Too,many,columns\n4,Ok,fine\n'
    )
    items = list(read_csv(p))
    assert items[0].payload == {"id": "1", "title": "Hello", "body": "multi\nline"}
    assert items[1].error == "not valid UTF-8"
    assert items[2].error == "row has more columns than the header"
    assert items[3].payload == {"id": "4", "title": "Ok", "body": "fine"}


def test_dir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Bonjour le monde", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# Titel\nHallo Welt", encoding="utf-8")
    (tmp_path / "c.bin").write_bytes(b"\x00\x01")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    items = list(read_dir(tmp_path))
    assert [i.origin for i in items] == ["a.txt", "bad.txt", "sub/b.md"]
    assert items[0].payload == {
        "id": "a.txt",
        "title": "a",
        "body": "Bonjour le monde",
        "path": "a.txt",
    }
    assert items[1].error is not None and "not valid UTF-8" in items[1].error


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="input not found"):
        open_source(str(tmp_path / "missing.jsonl"))
    (tmp_path / "x.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="cannot tell the format"):
        open_source(str(tmp_path / "x.parquet"))
    with pytest.raises(ConfigError, match="unknown --format"):
        open_source(str(tmp_path), "xml")
    with pytest.raises(ConfigError, match="is a directory"):
        open_source(str(tmp_path), "jsonl")
