"""Following an index, the pure parts: the checkpoint and its merge with SRC's shards, the
lag, the lock's lease and its store (over an in-memory stand-in for the cluster), the reads of
one poll (by ``_seq_no`` and by a field), the bodies and answers of the backend's reads, the
reconciliation of ids, and the CLI's flags."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import pytest

from xlidx.backends.base import Backend
from xlidx.backends.changes import (
    Change,
    ShardHead,
    changes_body,
    field_kind_of,
    ids_body,
    record_id,
    shard_heads_of,
    since_body,
    since_query,
)
from xlidx.backends.hits import RawHit
from xlidx.config import ConnectionSettings
from xlidx.errors import AuthenticationFailed, BackendError, ConfigError, MappingError
from xlidx.indices.follow_store import FollowStore
from xlidx.indices.reconcile import reconcile
from xlidx.pipeline.follow_state import (
    FollowCheckpoint,
    FollowerRunning,
    LagClock,
    Lease,
    LockLost,
    lease_seconds,
    state_ids,
)
from xlidx.workflows.follow_reads import ByField, BySeqNo, open_reader


def head(index: str, shard: int, seq: int, gcp: int | None = None, uuid: str = "u1") -> ShardHead:
    return ShardHead(index, uuid, shard, seq, seq if gcp is None else gcp)


# -- the checkpoint ----------------------------------------------------------------------------
def test_a_new_shard_starts_before_its_first_operation() -> None:
    ck, notes = FollowCheckpoint("src", "dst").with_heads([head("src", 0, 5), head("src", 1, 2)])
    assert ck.shards == {"src/0": -1, "src/1": -1} and ck.uuids == {"src": "u1"} and not notes
    assert ck.waiting([head("src", 0, 5), head("src", 1, 2)]) == 6 + 3


def test_the_merge_keeps_positions_and_resets_a_recreated_index() -> None:
    ck = FollowCheckpoint(
        "logs", "dst", shards={"a/0": 7, "a/1": 2, "b/0": 3, "c/0": 9},
        uuids={"a": "ua", "b": "ub", "c": "uc"},
    )  # fmt: skip
    # a/1's primary is recovering, c is out of the alias for now, b was re-created, d is new
    merged, notes = ck.with_heads(
        [head("a", 0, 9, uuid="ua"), head("b", 0, 1, uuid="ub2"), head("d", 0, 0, uuid="ud")]
    )
    assert merged.shards == {"a/0": 7, "a/1": 2, "c/0": 9, "b/0": -1, "d/0": -1}
    assert merged.uuids == {"a": "ua", "b": "ub2", "c": "uc", "d": "ud"}
    assert len(notes) == 1 and "b was re-created" in notes[0]


def test_advancing_never_moves_back() -> None:
    ck = FollowCheckpoint("s", "d", shards={"s/0": 10})
    assert ck.advanced("s/0", 4).position("s/0") == 10
    assert ck.advanced("s/0", 12).position("s/0") == 12
    assert ck.advanced("s/1", 0).position("s/1") == 0


def test_a_checkpoint_fits_the_same_mode_field_and_target_only() -> None:
    ck = FollowCheckpoint("s", "d", target_index="d-v1", target_created="t1")
    assert ck.unfit_for("seq_no", None, "d-v1", "t1") is None
    assert "_seq_no" in (ck.unfit_for("field", "updated", "d-v1", "t1") or "")
    assert "another version of d (d-v1)" in (ck.unfit_for("seq_no", None, "d-v2", "t2") or "")
    assert "re-created" not in (ck.unfit_for("seq_no", None, "d-v1", "t9") or "")


def test_the_checkpoint_survives_json() -> None:
    ck = FollowCheckpoint(
        "s", "d", mode="field", since_field="ts", shards={"s/0": 3}, uuids={"s": "u"},
        since=1700000000000, since_ids=("a", "b"), target_index="d-v1", target_created="t",
        read=42, updated="now",
    )  # fmt: skip
    assert FollowCheckpoint.from_json(ck.to_json()) == ck
    assert state_ids("s", "d") == ("lock:s:d", "checkpoint:s:d")


# -- the lag -----------------------------------------------------------------------------------
def test_the_lag_is_the_age_of_the_oldest_change_not_yet_in_dst() -> None:
    clock = LagClock()
    assert clock.lag(100.0) == 0.0
    clock.observe(10.0, {"s/0": 5})  # a first sighting: its changes count from now
    clock.observe(12.0, {"s/0": 5})  # nothing new
    clock.observe(15.0, {"s/0": 9})  # new since the sighting at 12
    assert clock.lag(20.0) == 10.0
    assert clock.settle({"s/0": 5}) == 10.0  # DST reached the first sighting, not the second
    assert clock.lag(20.0) == 8.0
    assert clock.settle({"s/0": 9}) == 12.0
    assert clock.lag(20.0) == 0.0 and clock.settle({"s/0": 9}) is None


def test_a_change_counts_from_the_last_poll_that_did_not_see_it() -> None:
    clock = LagClock()
    clock.observe(0.0, {})  # nothing waiting
    clock.observe(5.0, {})
    clock.observe(10.0, {"poll": 3})  # written at some time after 5.0
    assert clock.lag(11.0) == 6.0
    assert clock.settle({"poll": 3}) == 5.0 and clock.lag(11.0) == 0.0


def test_the_lag_counts_every_shard_and_forgets_gone_ones() -> None:
    clock = LagClock()
    clock.observe(1.0, {"s/0": 3, "s/1": 4})
    assert clock.settle({"s/0": 3, "s/1": 2}) is None
    assert clock.lag(11.0) == 10.0  # one shard still behind
    clock.settle({"s/0": 3})  # s/1 is no longer tracked (its index left SRC)
    assert clock.lag(11.0) == 0.0
    clock.observe(20.0, {"x": 1})
    clock.reset()
    assert clock.lag(30.0) == 0.0


# -- the lease ---------------------------------------------------------------------------------
def test_a_lease_expires_unless_renewed() -> None:
    lease = Lease("h:1:a", "h", 1, renewed=100.0, expires=130.0)
    assert not lease.expired(129.9) and lease.expired(130.0)
    assert lease.may_be_taken_by("h:1:a", 101.0)  # its own holder
    assert not lease.may_be_taken_by("other", 129.0) and lease.may_be_taken_by("other", 131.0)
    renewed = lease.renewed_at(125.0, 30.0)
    assert renewed.expires == 155.0 and not renewed.expired(140.0)
    assert "pid 1 on h, renewed 5s ago; the lock expires in 25s" in lease.describe(105.0)
    assert Lease.from_json(lease.to_json()) == lease
    assert lease_seconds(1.0) == 30.0 and lease_seconds(60.0) == 240.0


class StateCluster:
    """Versioned state documents, as the cluster keeps them (create / if_seq_no / delete)."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[dict[str, Any], int]] = {}
        self.seq = 0
        self.down = False

    def ensure_state_index(self, index: str) -> None:
        pass

    def read_state(self, index: str, doc_id: str) -> RawHit | None:
        if doc_id not in self.docs:
            return None
        src, seq = self.docs[doc_id]
        return RawHit(index, doc_id, source=dict(src), seq_no=seq, primary_term=1)

    def write_state(
        self, index: str, doc_id: str, source: Mapping[str, Any], *, create: bool = False,
        version: RawHit | None = None,
    ) -> RawHit:  # fmt: skip
        if self.down:
            raise BackendError("down", status=503)
        current = self.docs.get(doc_id)
        if (create and current) or (
            version is not None and (not current or current[1] != version.seq_no)
        ):
            raise BackendError("conflict", status=409)  # fmt: skip
        self.seq += 1
        self.docs[doc_id] = (dict(source), self.seq)
        return RawHit(index, doc_id, source=dict(source), seq_no=self.seq, primary_term=1)

    def delete_state(self, index: str, doc_id: str, *, version: RawHit | None = None) -> bool:
        current = self.docs.get(doc_id)
        if not current or (version is not None and current[1] != version.seq_no):
            return False
        del self.docs[doc_id]
        return True


def store(cluster: StateCluster, now: list[float]) -> FollowStore:
    return FollowStore(cast(Backend, cluster), "src", "dst", clock=lambda: now[0])


def test_the_lock_refuses_a_second_follower_until_it_expires() -> None:
    cluster, now = StateCluster(), [1000.0]
    first, second = store(cluster, now), store(cluster, now)
    held = first.acquire(first.new_lease(30))
    with pytest.raises(FollowerRunning, match=r"already keeping dst in step with src \(pid"):
        second.acquire(second.new_lease(30))
    now[0] += 20
    held = first.renew(held, 30)  # renewed: good for 30 s more
    now[0] += 25
    with pytest.raises(FollowerRunning):
        second.acquire(second.new_lease(30))
    now[0] += 10  # the first one crashed: its lease ran out
    taken = second.acquire(second.new_lease(30))
    assert cluster.docs["lock:src:dst"][0]["holder"] == taken.lease.holder
    with pytest.raises(LockLost, match="taken over by another follower"):
        first.renew(held, 30)
    first.release(held)  # not its lock any more: nothing happens
    assert "lock:src:dst" in cluster.docs
    second.release(taken)
    assert "lock:src:dst" not in cluster.docs


def test_the_checkpoint_is_saved_loaded_and_forgotten() -> None:
    cluster, now = StateCluster(), [0.0]
    s = store(cluster, now)
    assert s.load() is None
    ck = FollowCheckpoint("src", "dst", shards={"src/0": 4}, uuids={"src": "u"}, read=5)
    s.save(ck)
    s.save(ck)
    assert s.load() == ck
    s.forget()
    assert s.load() is None


# -- the reads of a poll -------------------------------------------------------------------------
def change(doc_id: str, position: Any, index: str = "src", **source: Any) -> Change:
    return Change(RawHit(index, doc_id, source={"body": f"text {doc_id}", **source}), position)


class ChangingSource:
    """SRC as the follower reads it: shards of (seq_no, id) still visible, a field's values."""

    def __init__(self, shards: dict[int, list[tuple[int, str]]], max_seq: dict[int, int]) -> None:
        self.shards, self.max_seq = shards, max_seq
        self.refreshes = 0
        self.refresh_error: BackendError | None = None
        self.requests: list[str] = []
        self.values: list[tuple[int, str]] = []  # (field value, id), any order
        self.settings = ConnectionSettings(urls=("http://127.0.0.1:1",))

    def shard_heads(self, index: str) -> list[ShardHead]:
        self.requests.append("stats")
        if index == "missing":
            raise BackendError("no such index", status=404)
        return [head("src", n, self.max_seq[n]) for n in sorted(self.shards)]

    def refresh(self, index: str) -> None:
        self.requests.append("refresh")
        if self.refresh_error is not None:
            raise self.refresh_error
        self.refreshes += 1

    def changes(self, index: str, shard: int, *, after: int, upto: int, size: int) -> list[Change]:
        self.requests.append(f"changes {shard}")
        docs = sorted((s, i) for s, i in self.shards[shard] if after < s <= upto)
        return [change(i, s) for s, i in docs[:size]]

    def field_kind(self, index: str, field: str) -> str | None:
        return {"ts": "date", "title": ""}.get(field)

    def count_since(self, index: str, field: str, kind: str, after: Any) -> int:
        self.requests.append("count")
        return sum(1 for v, _ in self.values if after is None or v > after)

    def changed_since(
        self, index: str, field: str, kind: str, *, after: Any, size: int
    ) -> list[Change]:
        self.requests.append(f"since {size}")
        docs = sorted((v, i) for v, i in self.values if after is None or v >= after)
        return [change(i, v) for v, i in docs[:size]]


def seq_reader(src: ChangingSource, page: int = 2) -> BySeqNo:
    return BySeqNo(cast(Backend, src), "src", LagClock(), page_size=page, clock=lambda: 0.0)


def test_an_idle_poll_by_seq_no_costs_one_request() -> None:
    src = ChangingSource({0: [(0, "a"), (1, "b")]}, {0: 1})
    ck = FollowCheckpoint("src", "dst", shards={"src/0": 1}, uuids={"src": "u1"})
    chunk = seq_reader(src).read(ck, 100)
    assert src.requests == ["stats"] and chunk.items == [] and chunk.caught_up
    assert chunk.checkpoint == ck and chunk.waiting == 0 and not chunk.maybe_deleted


def test_a_poll_reads_each_shard_in_seq_no_order_after_a_refresh() -> None:
    # shard 0: a written at 0, b at 1, a rewritten at 2 (so 0 left no document), c at 3;
    # shard 1: d at 0, e deleted at 1
    src = ChangingSource({0: [(1, "b"), (2, "a"), (3, "c")], 1: [(0, "d")]}, {0: 3, 1: 1})
    chunk = seq_reader(src).read(FollowCheckpoint("src", "dst"), 100)
    assert [i.payload["id"] for i in chunk.items] == ["b", "a", "c", "d"]
    assert chunk.items[0].origin == "index:src/b" and chunk.items[0].payload["body"] == "text b"
    assert chunk.checkpoint.shards == {"src/0": 3, "src/1": 1} and chunk.checkpoint.read == 4
    assert chunk.caught_up and chunk.waiting == 0 and chunk.maybe_deleted
    assert src.refreshes == 1 and src.requests.count("changes 0") == 2  # pages of 2


def test_a_poll_stops_at_its_budget_and_the_next_one_goes_on() -> None:
    src = ChangingSource({0: [(n, f"d{n}") for n in range(5)]}, {0: 4})
    reader = seq_reader(src)
    first = reader.read(FollowCheckpoint("src", "dst"), 3)
    assert [i.payload["id"] for i in first.items] == ["d0", "d1", "d2"]
    assert not first.caught_up and first.checkpoint.position("src/0") == 2
    assert first.waiting == 2 and not first.maybe_deleted
    rest = reader.read(first.checkpoint, 3)
    assert [i.payload["id"] for i in rest.items] == ["d3", "d4"] and rest.caught_up
    assert rest.checkpoint.read == 5


def test_without_the_right_to_refresh_a_poll_reads_what_the_last_one_saw() -> None:
    src = ChangingSource({0: [(0, "a"), (1, "b")]}, {0: 1})
    src.refresh_error = AuthenticationFailed("denied", status=403)
    reader = seq_reader(src)
    first = reader.read(FollowCheckpoint("src", "dst"), 100)
    assert first.items == [] and any("not allowed to refresh" in n for n in first.notes)
    second = reader.read(first.checkpoint, 100)
    assert [i.payload["id"] for i in second.items] == ["a", "b"]
    assert src.requests.count("refresh") == 1  # asked once


def test_a_missing_source_is_one_line() -> None:
    reader = BySeqNo(cast(Backend, ChangingSource({}, {})), "missing", LagClock())
    with pytest.raises(MappingError, match=r"no index 'missing' to follow"):
        reader.read(FollowCheckpoint("missing", "dst"), 10)


def test_by_field_reads_in_order_and_skips_what_it_read_at_the_last_value() -> None:
    src = ChangingSource({0: []}, {0: -1})
    src.values = [(10, "a"), (20, "b"), (20, "c"), (30, "d")]
    reader = ByField(cast(Backend, src), "src", "ts", "date", LagClock(), page_size=2)
    first = reader.read(FollowCheckpoint("src", "dst", mode="field", since_field="ts"), 2)
    assert [i.payload["id"] for i in first.items] == ["a", "b"] and not first.caught_up
    assert (first.checkpoint.since, first.checkpoint.since_ids) == (20, ("b",))
    second = reader.read(first.checkpoint, 10)
    assert [i.payload["id"] for i in second.items] == ["c", "d"] and second.caught_up
    src.values.append((30, "e"))  # written later with the same time as d
    third = reader.read(second.checkpoint, 10)
    assert [i.payload["id"] for i in third.items] == ["e"]
    assert third.checkpoint.since_ids == ("d", "e") and third.checkpoint.read == 5
    idle = reader.read(third.checkpoint, 10)
    assert idle.items == [] and idle.caught_up


def test_by_field_widens_a_page_full_of_one_value() -> None:
    src = ChangingSource({0: []}, {0: -1})
    src.values = [(5, f"x{n}") for n in range(3)] + [(6, "y")]
    reader = ByField(cast(Backend, src), "src", "ts", "number", LagClock(), page_size=2)
    ck = FollowCheckpoint("src", "dst", mode="field", since_field="ts", since=5,
                          since_ids=("x0", "x1"))  # fmt: skip
    chunk = reader.read(ck, 10)
    assert [i.payload["id"] for i in chunk.items] == ["x2", "y"]
    assert "since 4" in src.requests


def test_a_since_field_must_exist_and_order_changes() -> None:
    src = cast(Backend, ChangingSource({}, {}))
    with pytest.raises(ConfigError, match=r"^--since-field nope: src has no field 'nope'$"):
        open_reader(src, "src", "nope", LagClock(), page_size=10)
    with pytest.raises(ConfigError, match="neither a date nor a number"):
        open_reader(src, "src", "title", LagClock(), page_size=10)
    assert isinstance(open_reader(src, "src", "ts", LagClock(), page_size=10), ByField)
    assert isinstance(open_reader(src, "src", None, LagClock(), page_size=10), BySeqNo)


# -- the backend's bodies and answers --------------------------------------------------------------
def test_the_change_bodies() -> None:
    assert changes_body(4, 9, 100) == {
        "size": 100,
        "seq_no_primary_term": True,
        "track_total_hits": False,
        "sort": [{"_seq_no": "asc"}],
        "query": {"range": {"_seq_no": {"gt": 4, "lte": 9}}},
    }
    assert since_query("ts", "date", None, inclusive=True) == {"exists": {"field": "ts"}}
    assert since_query("ts", "date", 17, inclusive=False) == {
        "range": {"ts": {"gt": 17, "format": "epoch_millis"}}
    }
    assert since_body("n", "number", 3, 10)["query"] == {"range": {"n": {"gte": 3}}}
    assert since_body("n", "number", 3, 10)["sort"] == [
        {"n": {"order": "asc", "unmapped_type": "double"}}
    ]
    assert ids_body(None) == {"_source": False, "query": {"match_all": {}}}
    assert ids_body("id")["_source"] == ["id"]


def test_shard_heads_are_read_from_the_primaries() -> None:
    stats = {"indices": {"src": {"uuid": "U", "shards": {
        "1": [{"routing": {"primary": False}, "seq_no": {"max_seq_no": 1}},
              {"routing": {"primary": True}, "docs": {"count": 7},
               "seq_no": {"max_seq_no": 9, "global_checkpoint": 8}}],
        "0": [{"routing": {"primary": True},
               "seq_no": {"max_seq_no": -1, "global_checkpoint": -1}}],
        "2": [{"routing": {"primary": False}}],
    }}}}  # fmt: skip
    assert shard_heads_of(stats) == [
        ShardHead("src", "U", 0, -1, -1, 0),
        ShardHead("src", "U", 1, 9, 8, 7),
    ]


def test_field_kinds_and_record_ids() -> None:
    ts = {"a.ts": {"mapping": {"ts": {"type": "date"}}}}
    mapped = {"i1": {"mappings": {}}, "i2": {"mappings": ts}}
    assert field_kind_of(mapped, "a.ts") == "date" and field_kind_of(mapped, "b") is None
    keyword = {"i": {"mappings": {"t": {"mapping": {"t": {"type": "keyword"}}}}}}
    assert field_kind_of(keyword, "t") == ""
    hit = RawHit("i", "_x", source={"id": 7})
    assert record_id(hit, "id") == "7" and record_id(hit, None) == "_x"
    assert record_id(RawHit("i", "_x", source={"id": {"a": 1}}), "id") == "_x"


# -- reconciliation ------------------------------------------------------------------------------
class TwoIndices:
    def __init__(self, ids: dict[str, list[str]]) -> None:
        self.ids = ids
        self.deleted: list[str] = []

    def document_ids(
        self, index: str, *, id_field: str | None = None, size: int = 5000
    ) -> Iterator[str]:
        yield from self.ids[index]

    def delete_action(self, index: str, doc_id: str) -> dict[str, Any]:
        return {"_op_type": "delete", "_index": index, "_id": doc_id}

    def bulk(
        self, actions: Iterable[Mapping[str, Any]], **_kw: Any
    ) -> Iterator[tuple[bool, dict[str, Any]]]:
        for a in actions:
            self.deleted.append(a["_id"])
            yield a["_id"] != "gone", {}

    def refresh(self, index: str) -> None:
        pass


def test_reconciliation_deletes_from_dst_what_src_lost() -> None:
    both = TwoIndices({"dst": ["a", "b", "c", "gone"], "src": ["a", "c", "new"]})
    done = reconcile(cast(Backend, both), "src", "dst")
    assert sorted(both.deleted) == ["b", "gone"]
    assert (done.source_ids, done.target_ids, done.deleted) == (3, 4, 1)
    assert set(done.to_json()) == {"source_ids", "target_ids", "deleted", "seconds"}


# -- the CLI's flags -------------------------------------------------------------------------------
def test_the_follow_flags() -> None:
    from xlidx.cli.follow import follow_options

    base: dict[str, Any] = {
        "follow": True, "from_index": "src", "queue": False, "interval": None,
        "since_field": None, "reconcile_every": None, "from_start": False,
    }  # fmt: skip
    opts = follow_options(**base)
    assert opts is not None and (opts.interval, opts.reconcile_every) == (5.0, 60.0)
    opts = follow_options(**{**base, "interval": "2m", "since_field": "ts", "from_start": True})
    assert opts is not None and opts.interval == 120.0 and opts.since_field == "ts"
    assert opts.from_start
    assert follow_options(**{**base, "follow": False}) is None
    with pytest.raises(ConfigError, match=r"^--interval, --since-field only apply with --follow$"):
        follow_options(**{**base, "follow": False, "interval": "1s", "since_field": "t"})
    with pytest.raises(ConfigError, match="give --from-index SRC"):
        follow_options(**{**base, "from_index": None})
    with pytest.raises(ConfigError, match="--follow --queue is not supported"):
        follow_options(**{**base, "queue": True})
    with pytest.raises(ConfigError, match="--interval must be more than 0"):
        follow_options(**{**base, "interval": "0s"})
