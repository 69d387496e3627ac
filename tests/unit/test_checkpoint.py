"""Checkpoints, resumable file reads and the id registry (pure logic and local files)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from xlidx.backends.hits import RawHit
from xlidx.errors import BackendError, ConnectionFailed
from xlidx.indices.existing import read_index
from xlidx.pipeline.checkpoint import Checkpoint, Position, PrefixDigest, Saved, checkpoint_key
from xlidx.pipeline.sources import read_csv, read_jsonl, resumable
from xlidx.pipeline.stages import MemoryIds, batches


def write_jsonl(path: Path, n: int, *, blank_every: int = 0) -> Path:
    lines = []
    for i in range(n):
        lines.append(json.dumps({"id": f"d{i}", "body": f"text é {i}"}, ensure_ascii=False))
        if blank_every and i % blank_every == 0:
            lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_read_from_any_item_end_gives_exactly_the_rest(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "d.jsonl", 50, blank_every=7)
    items = list(read_jsonl(src))
    assert items[-1].end is not None and src.read_bytes()[items[-1].end :].strip() == b""
    for k in (0, 1, 17, 49):
        cut = items[k]
        assert cut.end is not None
        rest = list(read_jsonl(src, Position(cut.end, cut.line)))
        assert [(r.origin, r.payload) for r in rest] == [
            (r.origin, r.payload) for r in items[k + 1 :]
        ]


def test_csv_read_from_a_row_end_keeps_the_header_and_multiline_rows(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    src.write_bytes(b'id,body\r\na,"one\r\ntwo"\r\nb,plain\r\nc,"x, y"\r\nd,\xff bad\r\ne,last\r\n')
    items = list(read_csv(src))
    assert [i.payload["id"] if i.payload else i.error for i in items] == [
        "a", "b", "c", "not valid UTF-8", "e",
    ]  # fmt: skip
    assert items[0].payload["body"] == "one\r\ntwo" and items[0].origin == "d.csv:3"
    assert items[-1].end == src.stat().st_size
    cut = items[1]
    assert cut.end is not None
    rest = list(read_csv(src, Position(cut.end, cut.line)))
    assert [(r.origin, r.payload) for r in rest] == [(r.origin, r.payload) for r in items[2:]]


def test_prefix_digest_notices_an_edit_before_the_offset(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "d.jsonl", 100)
    offset = src.stat().st_size // 2
    digest = PrefixDigest(src)
    mid = digest.advance(offset // 2)
    saved = digest.advance(offset)
    assert mid != saved and PrefixDigest(src).matches(offset, saved)
    src.write_bytes(src.read_bytes().replace(b"text \xc3\xa9 3", b"text \xc3\xa9 X"))
    assert not PrefixDigest(src).matches(offset, saved)
    shorter = tmp_path / "short.jsonl"
    shorter.write_bytes(src.read_bytes()[: offset // 2])
    assert not PrefixDigest(shorter).matches(offset, saved)  # truncated: never a match


def test_checkpoint_saves_loads_and_forgets_ids_read_after_it(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ckpt = Checkpoint(path)
    assert ckpt.load() is None
    assert ckpt.claim([("a", "f:1", 10), ("b", "f:2", 20), ("a", "f:3", 30)]) == {2: "f:1"}
    assert ckpt.claim([("b", "f:4", 40), ("c", "f:5", 50)]) == {0: "f:2"}
    saved = Saved(offset=20, line=2, records=2, digest="x", index="i-v1", index_created="t",
                  updated="now")  # fmt: skip
    ckpt.save(saved)
    ckpt.close()
    again = Checkpoint(path)
    assert again.load() == saved
    again.resume_at(saved)  # "c" (at 50) was read after the checkpoint, never written
    assert again.claim([("c", "f:5", 50), ("a", "f:9", 90)]) == {1: "f:1"}
    again.reset()
    assert again.load() is None and again.claim([("a", "f:1", 10)]) == {}
    again.close()


def test_a_temporary_checkpoint_leaves_nothing_behind(tmp_path: Path) -> None:
    ckpt = Checkpoint.temporary_file(tmp_path)
    ckpt.claim([("a", "x", 0)] * 3)
    ckpt.close()
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_key_depends_on_source_cluster_index_and_pipeline(tmp_path: Path) -> None:
    base = {"source": tmp_path / "a.jsonl", "fmt": "jsonl", "cluster": "http://h:9200",
            "index": "docs", "fingerprint": "f1"}  # fmt: skip
    key = checkpoint_key(**base)  # type: ignore[arg-type]
    for k, v in (("source", tmp_path / "b.jsonl"), ("cluster", "http://h:9201"),
                 ("index", "other"), ("fingerprint", "f2"), ("fmt", "csv")):  # fmt: skip
        assert checkpoint_key(**{**base, k: v}) != key  # type: ignore[arg-type]


def test_batches_catch_a_repeated_id_anywhere_in_the_input(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    rows = [{"id": f"d{i % 7}", "body": f"b{i}"} for i in range(10)]  # d0..d2 come twice
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for registry in (MemoryIds(), Checkpoint.temporary_file(tmp_path / "t")):
        out = list(batches(read_jsonl(src), text_fields=("body",), max_doc_bytes=10_000,
                           batch_size=3, fingerprint="f", ids=registry))  # fmt: skip
        kept = [p.record.id for b in out for p in b.prepared]
        dead = [d.reason for b in out for d in b.dead]
        assert kept == [f"d{i}" for i in range(7)]
        assert dead == [f"duplicate id 'd{i}' (first seen at d.jsonl:{i + 1}); the first one "
                        "is kept" for i in range(3)]  # fmt: skip
        assert out[-1].end == Position(src.stat().st_size, 10)
        assert sum(b.read for b in out) == 10


def test_resumable_sources(tmp_path: Path) -> None:
    j = write_jsonl(tmp_path / "a.jsonl", 1)
    c = tmp_path / "a.csv"
    c.write_text("id,body\n1,x\n")
    assert resumable(str(j)) == (j, "jsonl")
    assert resumable(str(c)) == (c, "csv")
    assert resumable(str(j), "csv") == (j, "csv")
    assert resumable("-") is None
    assert resumable(str(tmp_path)) is None  # a directory is read whole
    assert resumable(str(tmp_path / "missing.jsonl")) is None


class FlakyScan:
    """A backend whose scroll is lost (or the cluster drops) after ``fail_after`` hits."""

    def __init__(self, n: int, fail_after: int, error: BackendError) -> None:
        self.n, self.fail_after, self.error = n, fail_after, error
        self.scans = 0

    def documents(self, index: str, size: int = 500) -> Iterator[RawHit]:
        self.scans += 1
        for i in range(self.n):
            if self.scans == 1 and i == self.fail_after:
                raise self.error
            j = (i * 7 + self.scans) % self.n  # another order each time
            yield RawHit(index, f"d{j}", source={"body": f"b{j}"})

    def count(self, index: str) -> int:
        return self.n


@pytest.mark.parametrize(
    "error",
    [
        BackendError("gone", status=404, details={"type": "search_context_missing_exception"}),
        ConnectionFailed("cannot connect"),
    ],
)
def test_read_index_reopens_a_lost_scroll_without_repeats(error: BackendError) -> None:
    backend = FlakyScan(20, 8, error)
    items = list(read_index(backend, "src", retry_for=5))  # type: ignore[arg-type]
    ids = [i.payload["id"] for i in items]
    assert sorted(ids) == sorted(f"d{i}" for i in range(20)) and backend.scans == 2


def test_read_index_without_patience_fails_at_once() -> None:
    backend = FlakyScan(20, 8, ConnectionFailed("cannot connect"))
    with pytest.raises(ConnectionFailed):
        list(read_index(backend, "src", retry_for=0))  # type: ignore[arg-type]


def test_an_unterminated_last_line_is_never_checkpointed_past(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_bytes(b'{"id": "a", "body": "x"}\n{"id": "b", "body": "half wri')
    items = list(read_jsonl(src))
    assert items[0].end == 25 and items[1].end is None  # b may still be being written
    out = list(batches(read_jsonl(src), text_fields=("body",), max_doc_bytes=100, batch_size=10,
                       fingerprint="f"))  # fmt: skip
    assert out[-1].end == Position(25, 1)
    csv_src = tmp_path / "d.csv"
    csv_src.write_bytes(b"id,body\na,x\nb,half")
    rows = list(read_csv(csv_src))
    assert [r.end for r in rows] == [12, None]


def test_one_run_per_checkpoint_and_clear_errors(tmp_path: Path) -> None:
    from xlidx.errors import ConfigError

    path = tmp_path / "c.sqlite"
    first = Checkpoint(path)
    with pytest.raises(ConfigError, match="another xlidx ingest of this file into this index"):
        Checkpoint(path)
    first.close()
    Checkpoint(path).close()  # free again once the first one closed
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"^cannot use the checkpoint .*XLIDX_HOME"):
        Checkpoint(blocker / "c.sqlite")
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="cannot use the checkpoint"):
        Checkpoint(broken)


def test_the_size_limit_is_part_of_the_checkpoint_key(tmp_path: Path) -> None:
    base = {"source": tmp_path / "a.jsonl", "fmt": "jsonl", "cluster": "c", "index": "i",
            "fingerprint": "f"}  # fmt: skip
    assert checkpoint_key(**base, max_doc_bytes=1000) != checkpoint_key(  # type: ignore[arg-type]
        **base,
        max_doc_bytes=2000,  # type: ignore[arg-type]
    )


def test_read_index_keeps_same_ids_of_different_indices() -> None:
    class TwoIndices:
        def documents(self, index: str, size: int = 500) -> Iterator[RawHit]:
            for name in ("a-v1", "b-v1"):
                yield RawHit(name, "d1", source={"body": name})

        def count(self, index: str) -> int:
            return 2

    items = list(read_index(TwoIndices(), "a-v1,b-v1"))  # type: ignore[arg-type]
    assert [i.origin for i in items] == ["index:a-v1/d1", "index:b-v1/d1"]
