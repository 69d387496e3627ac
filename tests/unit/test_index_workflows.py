"""The service layer's lifecycle, search and migrate results (xlidx/workflows/), in-process.

The lifecycle goes through :class:`~xlidx.workflows.Index` over the in-memory cluster of
test_index_lifecycle.py; search retries are driven with a fake searcher; the gate and the
migration's result are pure. Real migrations, gated ones included, run in tests/integration/
and tests/contract/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_index_lifecycle import FakeBackend
from xlidx.errors import BackendError, ConfigError, ConnectionFailed, ModelMismatch
from xlidx.eval.data import EvalQuery, Qrels
from xlidx.eval.gate import Gate, GateResult
from xlidx.search.retry import QueryUnavailable
from xlidx.spec import IndexSpec
from xlidx.workflows import Cluster, Index
from xlidx.workflows.migrate import EXIT_REFUSED, GateRefused, Migration
from xlidx.workflows.search import search

SPEC = IndexSpec(name="docs", embedding={"model": "tiny", "dimension": 8})


def _docs(*versions: int, current: int) -> FakeBackend:
    return FakeBackend([f"docs-v{v}" for v in versions]).point("docs", f"docs-v{current}")


# -- lifecycle ---------------------------------------------------------------------------------


def test_create_from_a_spec_then_again() -> None:
    backend = FakeBackend()
    docs = Cluster(backend).index("docs")
    made = docs.create(SPEC)
    assert made.to_json() == {"name": "docs", "index": "docs-v1", "created": True}
    assert docs.create(SPEC).to_json() == {"name": "docs", "index": "docs-v1", "created": False}
    other = IndexSpec(name="docs", embedding={"model": "other", "dimension": 8})
    with pytest.raises(ModelMismatch):
        docs.create(other)
    assert backend.calls == [("create_index", "docs-v1")]


def test_create_takes_a_spec_or_settings_for_this_index() -> None:
    docs = Index(FakeBackend(), "docs")
    with pytest.raises(ConfigError, match="an IndexSpec or its settings, not both"):
        docs.create(SPEC, shards=2)
    with pytest.raises(ConfigError, match="the spec is for 'docs', not for 'news'"):
        Index(FakeBackend(), "news").create(SPEC)


def test_create_checks_its_settings_before_reaching_the_cluster() -> None:
    class Unreachable(Cluster):
        @property
        def backend(self) -> Any:
            raise AssertionError("the cluster was reached")

    docs = Unreachable().index("docs")
    with pytest.raises(ConfigError, match="--shards must be an integer of 1 or more"):
        docs.create(shards=0)
    with pytest.raises(ConfigError, match="unknown language code 'xx'"):
        docs.create(languages=["xx"])
    with pytest.raises(ConfigError, match="invalid index name"):
        Unreachable().index("Docs").create()


def test_rollback_prune_delete_results() -> None:
    backend = _docs(1, 2, 3, current=3)
    backend.indices["docs-v3"] = {"xlidx": {**FakeBackend(["x"]).indices["x"]["xlidx"],
                                            "previous": "docs-v2"}}  # fmt: skip
    docs = Index(backend, "docs")
    assert docs.versions() == ["docs-v1", "docs-v2", "docs-v3"]
    back = docs.rollback()
    assert (back.from_index, back.to_index) == ("docs-v3", "docs-v2")
    assert back.to_json() == {"name": "docs", "from": "docs-v3", "to": "docs-v2"}
    pruned = docs.prune(keep=2)
    assert pruned.to_json() == {
        "name": "docs", "current": "docs-v2", "deleted": ["docs-v1"], "kept": ["docs-v3", "docs-v2"]
    }  # fmt: skip
    gone = docs.delete()
    assert gone.to_json() == {"name": "docs", "deleted": ["docs-v2", "docs-v3"]}
    assert backend.indices == {}


def test_cluster_lists_its_indices() -> None:
    class Listed(FakeBackend):
        def cat_indices(self) -> list[dict[str, Any]]:
            return [
                {"index": "docs-v1", "health": "green", "docs.count": "3", "store.size": "1kb"},
                {"index": ".hidden", "health": "green", "docs.count": "1", "store.size": "1kb"},
                {"index": "a", "health": "yellow", "docs.count": "", "store.size": None},
            ]

        def cat_aliases(self) -> list[dict[str, Any]]:
            return [{"alias": "docs", "index": "docs-v1"}, {"alias": "all", "index": "docs-v1"}]

    rows = [r.to_json() for r in Cluster(Listed()).indices()]
    assert rows == [
        {"index": "a", "aliases": [], "health": "yellow", "docs": None, "size": None},
        {"index": "docs-v1", "aliases": ["all", "docs"], "health": "green", "docs": 3,
         "size": "1kb"},
    ]  # fmt: skip


# -- search ------------------------------------------------------------------------------------


class _Searcher:
    def __init__(self, failures: list[BackendError]) -> None:
        self.failures = failures
        self.queries: list[Any] = []

    def search(self, query: Any, *, translate: bool, explain: bool) -> str:
        self.queries.append((query.plan().text, translate, explain))
        if self.failures:
            raise self.failures.pop(0)
        return "result"


def test_search_retries_opening_the_searcher_and_the_query() -> None:
    searcher = _Searcher([BackendError("busy", status=503)])
    opened: list[int] = []

    def open_searcher() -> Any:
        opened.append(1)
        if len(opened) == 1:  # the first try cannot even ask the cluster which engine it is
            raise ConnectionFailed("cannot connect to http://n1:9200")
        return searcher

    retries: list[tuple[int, str]] = []
    result: Any = search(
        open_searcher, "  le chat ", explain=True, retry_for=30,
        on_retry=lambda n, _wait, exc: retries.append((n, str(exc))),
    )  # fmt: skip
    assert result == "result"
    assert retries == [(1, "cannot connect to http://n1:9200"), (2, "busy")]
    assert searcher.queries == [("le chat", False, True)] * 2


def _opens(*failures: BackendError) -> Callable[[], Any]:
    searcher = _Searcher(list(failures))
    return lambda: searcher


def test_search_gives_up_after_its_budget_and_fails_at_once_on_a_bad_query() -> None:
    with pytest.raises(QueryUnavailable, match="gave up after 1 try"):
        search(_opens(ConnectionFailed("down")), "x", retry_for=0)
    with pytest.raises(BackendError, match="bad query"):
        search(_opens(BackendError("bad query", status=400)), "x")
    with pytest.raises(ConfigError, match="the query text is empty"):
        search(_opens(), "  ")


def test_index_keeps_its_searcher_until_the_alias_moves() -> None:
    docs = Index(_docs(1, 2, current=2), "docs")
    first = docs.searcher()
    assert docs.searcher() is first and docs.searcher("cpu") is not first
    docs.rollback()
    assert docs.searcher() is not first


# -- the gate and the migration's result --------------------------------------------------------


def _judged() -> tuple[list[EvalQuery], Qrels]:
    return [EvalQuery("q1", "cat")], Qrels({"q1": {"d1": 1}})


def test_gate_checks_its_settings() -> None:
    queries, qrels = _judged()
    assert Gate(queries, qrels, metric="MRR@10").metric == "RR@10"
    with pytest.raises(ConfigError, match="unknown --gate-mode 'fuzzy'"):
        Gate(queries, qrels, mode="fuzzy")
    with pytest.raises(ConfigError, match="--max-drop must be 0 or more"):
        Gate(queries, qrels, max_drop=-0.1)


def test_gate_from_files(tmp_path: Path) -> None:
    (tmp_path / "q.tsv").write_text("q1\tcat\n")
    (tmp_path / "qrels.txt").write_text("q1 0 d1 1\n")
    gate = Gate.from_files(tmp_path / "q.tsv", tmp_path / "qrels.txt", "MRR@10", 0.05, "knn")
    assert (gate.metric, gate.max_drop, gate.mode) == ("RR@10", 0.05, "knn")
    assert [q.qid for q in gate.queries] == ["q1"] and gate.qrels.judgments == {"q1": {"d1": 1}}
    with pytest.raises(ConfigError, match="unknown --gate-mode"):  # before the files are read
        Gate.from_files(tmp_path / "missing.tsv", tmp_path / "qrels.txt", mode="fuzzy")
    (tmp_path / "qrels.txt").write_text("q9 0 d1 1\n")
    with pytest.raises(ConfigError):
        Gate.from_files(tmp_path / "q.tsv", tmp_path / "qrels.txt")


def _gate_result(new: float) -> GateResult:
    return GateResult(metric="nDCG@10", max_drop=0.01, old_index="docs-v1",
                      new_index="docs-v2", old={"nDCG@10": 0.5}, new={"nDCG@10": new})  # fmt: skip


def test_a_refused_migration_is_a_result_and_raises_on_request() -> None:
    refused = Migration(name="docs", from_index="docs-v1", to_index="docs-v2", documents=3,
                        moved=False, gate=_gate_result(0.3), report="gate.html")  # fmt: skip
    assert refused.refused and refused.kept_for_rollback is None
    as_json = refused.to_json()
    assert list(as_json) == ["name", "from", "to", "documents", "kept_for_rollback", "moved",
                             "gate"]  # fmt: skip
    assert as_json["gate"]["passed"] is False and as_json["gate"]["report"] == "gate.html"
    assert list(as_json["gate"])[-2:] == ["reason", "report"]
    with pytest.raises(GateRefused) as caught:
        refused.raise_if_refused()
    assert caught.value.migration is refused and caught.value.exit_code == EXIT_REFUSED == 3
    assert str(caught.value).startswith("migration refused by the gate: nDCG@10 0.5000 -> 0.3000")
    assert str(caught.value).endswith(
        "the alias docs still points at docs-v1, docs-v2 is kept for inspection; report: gate.html"
    )


def test_a_moved_migration_says_what_it_kept() -> None:
    moved = Migration(name="docs", from_index="docs-v1", to_index="docs-v2", documents=3,
                      moved=True, gate=_gate_result(0.495))  # fmt: skip
    moved.raise_if_refused()
    assert moved.to_json()["kept_for_rollback"] == "docs-v1"
    plain = Migration(name="docs", from_index="docs-v1", to_index="docs-v2", documents=3,
                      moved=True)  # fmt: skip
    assert plain.to_json() == {"name": "docs", "from": "docs-v1", "to": "docs-v2", "documents": 3,
                               "kept_for_rollback": "docs-v1", "moved": True}  # fmt: skip


def test_index_migrate_raises_a_refusal_carrying_the_migration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import xlidx.workflows.migrate as workflow

    refused = Migration(name="docs", from_index="docs-v1", to_index="docs-v2", documents=3,
                        moved=False, gate=_gate_result(0.3))  # fmt: skip
    seen: dict[str, Any] = {}

    def fake(index: Index, **kwargs: Any) -> Migration:
        seen.update(kwargs, index=index)
        return refused

    monkeypatch.setattr(workflow, "migrate", fake)
    docs = Index(FakeBackend(), "docs")
    with pytest.raises(GateRefused) as caught:
        docs.migrate(model="m", redetect=True, languages=["fr"], report="r.html")
    assert caught.value.migration is refused and str(caught.value).endswith("report: None")
    assert seen["index"] is docs and seen["model"] == "m" and seen["languages"] == ["fr"]
    assert seen["device"] == "auto" and seen["gate"] is None and seen["report"] == "r.html"
