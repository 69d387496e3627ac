"""What following an index reads of it: where each shard stands, what changed since, its ids.

Pure: the request bodies of the follower's reads (changes by ``_seq_no`` on one shard, by a
field the user names, ids alone) and the parsing of their answers. The backends run them
(:meth:`xlidx.backends.base.Backend.shard_heads` and the methods beside it); nothing above
``backends/`` sees this DSL or these raw answers.

Both engines (OpenSearch 2.x, Elasticsearch 8.x, checked on the dev nodes) index ``_seq_no``
as a number with doc values, so ``range`` and ``sort`` on it work, and ``preference=_shards:N``
keeps a search on one shard, where sequence numbers are unique and ordered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xlidx.backends.hits import RawHit, raw_hit

__all__ = [
    "FIELD_KINDS",
    "STATE_INDEX_BODY",
    "Change",
    "ShardHead",
    "changes_body",
    "field_kind_of",
    "hits_with_sort",
    "ids_body",
    "record_id",
    "shard_heads_of",
    "since_body",
    "since_query",
]

#: Field types ``--since-field`` accepts, and how their values are compared.
FIELD_KINDS = {
    "date": "date",
    "long": "number",
    "integer": "number",
    "short": "number",
    "byte": "number",
    "double": "number",
    "float": "number",
    "half_float": "number",
    "scaled_float": "number",
    "unsigned_long": "number",
}

#: The hidden index of small state documents (a follower's checkpoint and lock): one shard,
#: a replica where there is a second node, sources stored and nothing indexed.
STATE_INDEX_BODY: dict[str, Any] = {
    "settings": {"index.hidden": True, "number_of_shards": 1, "auto_expand_replicas": "0-1"},
    "mappings": {"dynamic": False, "properties": {}},
}


@dataclass(frozen=True)
class ShardHead:
    """Where one primary shard of a concrete index stands (``_stats?level=shards``).

    ``max_seq_no``: the last operation it took; ``global_checkpoint``: the operation up to
    which every operation is done on every in-sync copy (what a follower may read up to
    without a later failover taking it back). ``docs``: live documents on the shard."""

    index: str
    uuid: str
    shard: int
    max_seq_no: int
    global_checkpoint: int
    docs: int = 0

    @property
    def key(self) -> str:
        return f"{self.index}/{self.shard}"


@dataclass(frozen=True)
class Change:
    """A document a change read returned, with its sort position: its ``_seq_no`` (changes
    of one shard) or the value of the ``--since-field`` (epoch milliseconds for a date)."""

    hit: RawHit
    position: Any


def shard_heads_of(response: Mapping[str, Any]) -> list[ShardHead]:
    """The primaries of every index of an index-stats answer at shard level (pure)."""
    out: list[ShardHead] = []
    for name, stats in sorted((response.get("indices") or {}).items()):
        uuid = str(stats.get("uuid", ""))
        for shard, copies in sorted((stats.get("shards") or {}).items(), key=lambda kv: int(kv[0])):
            primary = next((c for c in copies if (c.get("routing") or {}).get("primary")), None)
            if primary is None:  # no active primary: nothing can be read there now
                continue
            seq = primary.get("seq_no") or {}
            out.append(
                ShardHead(
                    index=name,
                    uuid=uuid,
                    shard=int(shard),
                    max_seq_no=int(seq.get("max_seq_no", -1)),
                    global_checkpoint=int(seq.get("global_checkpoint", -1)),
                    docs=int((primary.get("docs") or {}).get("count", 0)),
                )
            )
    return out


def changes_body(after: int, upto: int, size: int) -> dict[str, Any]:
    """The documents of one shard whose last write has ``after < _seq_no <= upto``, oldest
    first (pure). Run with ``preference=_shards:N``."""
    return {
        "size": size,
        "seq_no_primary_term": True,
        "track_total_hits": False,
        "sort": [{"_seq_no": "asc"}],
        "query": {"range": {"_seq_no": {"gt": after, "lte": upto}}},
    }


def since_query(field: str, kind: str, after: Any, *, inclusive: bool) -> dict[str, Any]:
    """Documents whose ``field`` is at or after ``after`` (every document with the field
    when ``after`` is None) (pure)."""
    if after is None:
        return {"exists": {"field": field}}
    bound: dict[str, Any] = {"gte" if inclusive else "gt": after}
    if kind == "date":
        bound["format"] = "epoch_millis"  # the sort value of a date is epoch milliseconds
    return {"range": {field: bound}}


def since_body(field: str, kind: str, after: Any, size: int) -> dict[str, Any]:
    """The documents with ``field`` at or after ``after``, in its order (pure)."""
    # an index of SRC (an alias, a pattern) without the field sorts as if it had one
    unmapped = "date" if kind == "date" else "double"
    return {
        "size": size,
        "track_total_hits": False,
        "sort": [{field: {"order": "asc", "unmapped_type": unmapped}}],
        "query": since_query(field, kind, after, inclusive=True),
    }


def ids_body(id_field: str | None) -> dict[str, Any]:
    """Every document, with nothing of its source but ``id_field`` (pure)."""
    return {"_source": [id_field] if id_field else False, "query": {"match_all": {}}}


def hits_with_sort(response: Mapping[str, Any]) -> list[Change]:
    """The hits of a sorted search, each with its first sort value (pure)."""
    out = []
    for h in response["hits"]["hits"]:
        sort = h.get("sort") or [h.get("_seq_no")]
        out.append(Change(raw_hit(h), sort[0]))
    return out


def field_kind_of(response: Mapping[str, Any], field: str) -> str | None:
    """``date`` or ``number`` for ``field`` in a field-mapping answer, ``""`` for a field of
    another type, None where no index maps it (pure)."""
    leaf = field.rsplit(".", 1)[-1]
    for mapped in (response or {}).values():
        found = (mapped.get("mappings") or {}).get(field)
        if not found:
            continue
        ftype = str(((found.get("mapping") or {}).get(leaf) or {}).get("type", ""))
        return FIELD_KINDS.get(ftype, "")
    return None


def record_id(hit: RawHit, id_field: str | None) -> str:
    """The id ingest gives the document of ``hit``: its ``id_field`` when it holds a string
    or a number (as :func:`xlidx.documents.to_record` reads it), else its ``_id`` (pure)."""
    if id_field:
        value = hit.source.get(id_field)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return hit.id
