"""The writer's retries, against the real node behind a real HTTP proxy that fails on purpose.

The proxy (:mod:`tests.fixtures.proxy`) answers the first bulk requests with 503 / 429 (or
drops the connection), then forwards everything to the dev node: every document must arrive
exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.proxy import Faults, start_proxy
from xlidx.backends.opensearch import OpenSearchBackend
from xlidx.backends.opensearch.client import make_client
from xlidx.config import ConnectionSettings
from xlidx.documents import Prepared, RawItem, Record, to_record
from xlidx.errors import BackendError
from xlidx.indices.writer import BulkWriter
from xlidx.pipeline.patience import Patience

pytestmark = pytest.mark.integration


@pytest.fixture
def proxied(dev_node: ConnectionSettings) -> Iterator[tuple[ConnectionSettings, Faults, str]]:
    faults = Faults()
    server, url = start_proxy(dev_node.urls[0], faults)
    index = f"xlidx-retry-{uuid.uuid4().hex[:8]}"
    make_client(dev_node).indices.create(index=index)
    try:
        yield ConnectionSettings(urls=(url,), timeout=10.0), faults, index
    finally:
        server.shutdown()
        server.server_close()
        make_client(dev_node).indices.delete(index=index, ignore_unavailable=True)


def _batch(n: int) -> list[Prepared]:
    out = []
    for i in range(n):
        rec = to_record(RawItem(f"t:{i}", payload={"id": f"d{i}", "body": f"document {i}"}))
        assert isinstance(rec, Record)
        out.append(Prepared(rec, field_langs={"body": "en"}, vectors=[]))
    return out


@pytest.mark.parametrize("plan", [[503, 502], [504, "drop"], [429, 429]])
def test_transient_failures_are_retried_without_duplicates(
    proxied: tuple[ConnectionSettings, Faults, str], dev_node: ConnectionSettings, plan: list[Any]
) -> None:
    settings, faults, index = proxied
    faults.plan = list(plan)
    writer = BulkWriter(
        OpenSearchBackend(settings),
        max_docs=4,
        concurrency=1,
        patience=Patience(attempts=6, initial=0.01, sleep=lambda _s: None),
    )
    result = writer.write(index, _batch(10), model="none")
    assert result.indexed == 10 and result.dead == []
    assert faults.bulk_calls == 3 + len(plan)  # 3 chunks of at most 4, plus the failed tries
    client = make_client(dev_node)
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 10


def test_persistent_failure_is_a_clear_error(
    proxied: tuple[ConnectionSettings, Faults, str],
) -> None:
    settings, faults, index = proxied
    faults.plan = [503] * 10
    writer = BulkWriter(
        OpenSearchBackend(settings),
        patience=Patience(attempts=2, initial=0.01, sleep=lambda _s: None),
    )
    with pytest.raises(BackendError, match="HTTP 503 while trying to write documents"):
        writer.write(index, _batch(3), model="none")


def test_rejected_documents_are_dead_lettered(dev_node: ConnectionSettings) -> None:
    """A per-item refusal (a mapping error) becomes a dead letter; the rest is written."""
    client = make_client(dev_node)
    index = f"xlidx-reject-{uuid.uuid4().hex[:8]}"
    client.indices.create(
        index=index, body={"mappings": {"properties": {"year": {"type": "integer"}}}}
    )
    try:
        batch = _batch(3)
        bad = to_record(
            RawItem("t:bad", payload={"id": "bad", "body": "x", "year": "not a number"})
        )
        assert isinstance(bad, Record)
        batch.append(Prepared(bad, field_langs={"body": "en"}))
        result = BulkWriter(OpenSearchBackend(dev_node)).write(index, batch, model="none")
        assert result.indexed == 3
        assert [d.id for d in result.dead] == ["bad"]
        assert (
            result.dead[0].stage == "write" and "mapper_parsing_exception" in result.dead[0].reason
        )
        assert result.dead[0].record["year"] == "not a number"  # nothing lost
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
