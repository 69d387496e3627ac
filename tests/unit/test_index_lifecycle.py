"""The decisions of the index lifecycle (xlidx/indices/manage.py) over an in-memory cluster.

Which version ``rollback`` picks, what ``prune --keep`` deletes, when ``delete`` refuses: pure
logic over aliases and index names, so a fake :class:`Backend` that keeps indices and aliases
in dicts stands in for the cluster. The real round trips are in tests/contract/.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from xlidx.backends.base import Backend
from xlidx.backends.opensearch import mapping
from xlidx.config import ConnectionSettings
from xlidx.errors import ConfigError, MappingError
from xlidx.indices.manage import delete, ensure, prune, resolve, rollback
from xlidx.spec import IndexSpec

XLIDX_META = {"xlidx": {"mapping_version": 1, "embedding": {"model": "tiny", "dimension": 8}}}


def _unused(name: str) -> Callable[..., Any]:
    def method(self: Backend, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the lifecycle logic is not expected to call Backend.{name}")

    return method


# every abstract method fails loudly unless FakeBackend implements it
_Stubbed: type[Backend] = type(
    "_Stubbed", (Backend,), {name: _unused(name) for name in Backend.__abstractmethods__}
)


class FakeBackend(_Stubbed):  # type: ignore[misc, valid-type]
    """Indices (name → _meta) and aliases (alias → {index: properties}) in memory; every call
    that changes the cluster is recorded in ``calls``."""

    engine = "fake"

    def __init__(
        self,
        indices: Mapping[str, Mapping[str, Any]] | Sequence[str] = (),
        aliases: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        super().__init__(ConnectionSettings(urls=("http://fake:9200",)))
        if isinstance(indices, Mapping):
            self.indices = {k: dict(v) for k, v in indices.items()}
        else:
            self.indices = {i: dict(XLIDX_META) for i in indices}
        self.aliases = {a: {i: dict(p) for i, p in t.items()} for a, t in (aliases or {}).items()}
        self.calls: list[tuple[str, Any]] = []

    def point(self, alias: str, index: str) -> FakeBackend:
        self.aliases[alias] = {index: {"is_write_index": True}}
        return self

    # -- what the lifecycle reads --------------------------------------------------------------
    def alias_targets(self, alias: str) -> dict[str, dict[str, Any]]:
        return {i: dict(p) for i, p in self.aliases.get(alias, {}).items()}

    def index_exists(self, index: str) -> bool:
        return index in self.indices

    def list_indices(self, pattern: str) -> list[str]:
        return sorted(i for i in self.indices if fnmatch.fnmatchcase(i, pattern))

    def get_meta(self, index: str) -> dict[str, Any]:
        return dict(self.indices[index])

    def has_analyzer(self, name: str) -> bool:
        return name in {"english", "french"}

    def index_body(self, spec: IndexSpec, **kwargs: Any) -> dict[str, Any]:
        return mapping.index_body(spec, **kwargs)

    # -- what it changes -----------------------------------------------------------------------
    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self.calls.append(("update_aliases", [dict(a) for a in actions]))
        for action in actions:
            (verb, args), *_ = action.items()
            if verb == "remove":
                self.aliases[args["alias"]].pop(args["index"])
            else:
                props = {k: v for k, v in args.items() if k not in ("index", "alias")}
                self.aliases.setdefault(args["alias"], {})[args["index"]] = props

    def delete_indices(self, indices: Sequence[str]) -> None:
        self.calls.append(("delete_indices", list(indices)))
        for i in indices:
            del self.indices[i]
            for targets in self.aliases.values():
                targets.pop(i, None)

    def create_index(self, index: str, body: Mapping[str, Any]) -> None:
        self.calls.append(("create_index", index))
        self.indices[index] = dict(body["mappings"]["_meta"])
        for alias, props in body.get("aliases", {}).items():
            self.aliases.setdefault(alias, {})[index] = dict(props)


def _docs(*versions: int, current: int) -> FakeBackend:
    return FakeBackend([f"docs-v{v}" for v in versions]).point("docs", f"docs-v{current}")


# -- prune -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keep", "deleted", "kept"),
    [
        (1, ["docs-v1", "docs-v2", "docs-v3"], ["docs-v4"]),
        (2, ["docs-v1", "docs-v2"], ["docs-v3", "docs-v4"]),
        (4, [], ["docs-v1", "docs-v2", "docs-v3", "docs-v4"]),
        (10, [], ["docs-v1", "docs-v2", "docs-v3", "docs-v4"]),
    ],
)
def test_prune_keep_counts_the_current_version(
    keep: int, deleted: list[str], kept: list[str]
) -> None:
    b = _docs(1, 2, 3, 4, current=4)
    report = prune(b, "docs", keep)
    assert report == {"name": "docs", "current": "docs-v4", "deleted": deleted, "kept": kept}
    assert b.calls == [("delete_indices", deleted)]  # one call, even when there is nothing
    assert sorted(b.indices) == kept
    assert b.alias_targets("docs") == {"docs-v4": {"is_write_index": True}}


def test_prune_orders_versions_by_number_not_by_name() -> None:
    b = _docs(1, 2, 10, 11, current=11)
    assert prune(b, "docs", 2)["deleted"] == ["docs-v1", "docs-v2"]
    assert sorted(b.indices) == ["docs-v10", "docs-v11"]


def test_prune_after_rollback_keeps_the_current_and_the_newest_others() -> None:
    """The alias points at v2 after a rollback: v2 is always kept, and `keep` counts the
    newest of the others (here v3, the version rolled back from)."""
    b = _docs(1, 2, 3, current=2)
    report = prune(b, "docs", 2)
    assert report["deleted"] == ["docs-v1"] and report["kept"] == ["docs-v3", "docs-v2"]
    report = prune(b, "docs", 1)
    assert report["deleted"] == ["docs-v3"] and report["kept"] == ["docs-v2"]
    assert list(b.indices) == ["docs-v2"]


def test_prune_leaves_other_indices_alone() -> None:
    """Only docs-v<N> is a version of docs: look-alikes survive any --keep."""
    b = _docs(1, 2, current=2)
    for other in ("docs-v2-old", "docs-vx", "docs-v-v3", "docsy-v1"):
        b.indices[other] = dict(XLIDX_META)
    assert prune(b, "docs", 1)["deleted"] == ["docs-v1"]
    assert "docs-v2-old" in b.indices and "docs-v-v3" in b.indices


@pytest.mark.parametrize("keep", [0, -1])
def test_prune_keep_below_one_is_refused_before_any_call(keep: int) -> None:
    b = _docs(1, 2, current=2)
    with pytest.raises(ConfigError, match="--keep must be 1 or more"):
        prune(b, "docs", keep)
    assert b.calls == [] and len(b.indices) == 2


def test_prune_needs_an_xlidx_index() -> None:
    with pytest.raises(MappingError, match="no xlidx index named 'docs' to prune"):
        prune(FakeBackend(), "docs", 1)
    with pytest.raises(MappingError, match="'docs' is a plain index"):
        prune(FakeBackend(["docs"]), "docs", 1)


# -- rollback ----------------------------------------------------------------------------------


def test_rollback_moves_the_alias_to_the_newest_older_version() -> None:
    b = _docs(1, 2, 3, current=3)
    assert rollback(b, "docs") == {"name": "docs", "from": "docs-v3", "to": "docs-v2"}
    assert b.calls == [
        (
            "update_aliases",
            [
                {"remove": {"index": "docs-v3", "alias": "docs"}},
                {"add": {"index": "docs-v2", "alias": "docs", "is_write_index": True}},
            ],
        )
    ]
    assert b.alias_targets("docs") == {"docs-v2": {"is_write_index": True}}
    assert sorted(b.indices) == ["docs-v1", "docs-v2", "docs-v3"]  # nothing deleted
    # and again: one step further back, never forward to v3
    assert rollback(b, "docs")["to"] == "docs-v1"


def test_rollback_skips_pruned_versions_and_compares_numbers() -> None:
    assert rollback(_docs(1, 3, current=3), "docs")["to"] == "docs-v1"
    assert rollback(_docs(2, 9, 10, current=10), "docs")["to"] == "docs-v9"


def test_rollback_without_an_older_version() -> None:
    for b in (_docs(1, current=1), _docs(1, 2, current=1), _docs(5, current=5)):
        with pytest.raises(MappingError, match="has no version older than docs-v"):
            rollback(b, "docs")
        assert b.calls == []


def test_rollback_refuses_an_older_index_xlidx_did_not_make() -> None:
    b = FakeBackend({"docs-v1": {"other": {}}, "docs-v2": XLIDX_META}).point("docs", "docs-v2")
    with pytest.raises(MappingError, match="has no version older than docs-v2"):
        rollback(b, "docs")
    assert b.calls == [] and b.alias_targets("docs") == {"docs-v2": {"is_write_index": True}}


def test_rollback_goes_back_to_the_recorded_previous_version() -> None:
    """A migrate that failed left docs-v2 half copied; the next one, v3, records v1 as what it
    replaced, and rollback goes there, never to the half copy."""
    current = {"xlidx": {**XLIDX_META["xlidx"], "previous": "docs-v1"}}
    b = FakeBackend({"docs-v1": XLIDX_META, "docs-v2": XLIDX_META, "docs-v3": current})
    rollback(b.point("docs", "docs-v3"), "docs")
    assert list(b.alias_targets("docs")) == ["docs-v1"]


def test_prune_and_delete_leave_look_alike_indices_alone() -> None:
    b = FakeBackend({"docs-v1": XLIDX_META, "docs-v2": {"other": {}}, "docs-v3": XLIDX_META})
    b.point("docs", "docs-v3")
    assert prune(b, "docs", keep=1)["deleted"] == ["docs-v1"]
    assert delete(b, "docs")["deleted"] == ["docs-v3"]
    assert "docs-v2" in b.indices


def test_rollback_needs_an_xlidx_index() -> None:
    with pytest.raises(MappingError, match="no xlidx index named 'docs' to roll back"):
        rollback(FakeBackend(["docs-v1"]), "docs")
    with pytest.raises(MappingError, match="'docs' is a plain index"):
        rollback(FakeBackend(["docs"]), "docs")
    b = FakeBackend(["docs-v1", "other"]).point("docs", "other")
    with pytest.raises(MappingError, match="points at 'other', which is not docs-v<N>"):
        rollback(b, "docs")


# -- delete ------------------------------------------------------------------------------------


def test_delete_removes_every_version_in_one_call() -> None:
    b = _docs(1, 2, 10, current=2)
    b.indices["unrelated"] = {}
    assert delete(b, "docs") == {"name": "docs", "deleted": ["docs-v1", "docs-v2", "docs-v10"]}
    assert b.calls == [("delete_indices", ["docs-v1", "docs-v2", "docs-v10"])]
    assert list(b.indices) == ["unrelated"] and b.alias_targets("docs") == {}


def test_delete_versions_without_an_alias() -> None:
    b = FakeBackend(["docs-v1", "docs-v2"])
    assert delete(b, "docs")["deleted"] == ["docs-v1", "docs-v2"]


def test_delete_refuses_a_plain_index() -> None:
    b = FakeBackend({"docs": {}})
    with pytest.raises(MappingError, match="'docs' is a plain index, not an xlidx alias"):
        delete(b, "docs")
    assert b.calls == [] and "docs" in b.indices


def test_delete_refuses_an_alias_that_also_points_at_foreign_indices() -> None:
    b = FakeBackend(["docs-v1", "docs-v2", "customers"])
    b.aliases["docs"] = {"docs-v2": {"is_write_index": True}, "customers": {}}
    with pytest.raises(MappingError, match="also points at customers, which xlidx did not create"):
        delete(b, "docs")
    assert b.calls == [] and len(b.indices) == 3


def test_delete_refuses_an_alias_over_foreign_indices_only() -> None:
    b = FakeBackend(["customers"])
    b.aliases["docs"] = {"customers": {}}
    with pytest.raises(MappingError, match="also points at customers"):
        delete(b, "docs")
    assert b.calls == []


def test_delete_nothing_and_bad_names() -> None:
    with pytest.raises(MappingError, match="no xlidx index named 'docs' to delete"):
        delete(FakeBackend(["other-v1"]), "docs")
    with pytest.raises(ConfigError, match="invalid index name"):
        delete(FakeBackend(["docs-v1"]), "docs-v1")


# -- resolve and ensure ------------------------------------------------------------------------


def test_resolve_picks_the_write_index_of_a_multi_index_alias() -> None:
    b = FakeBackend(["docs-v1", "docs-v2"])
    b.aliases["docs"] = {"docs-v1": {}, "docs-v2": {"is_write_index": True}}
    state = resolve(b, "docs")
    assert state is not None and (state.index, state.version) == ("docs-v2", 2)
    b.aliases["docs"] = {"docs-v1": {}, "docs-v2": {}}
    with pytest.raises(MappingError, match="points at several indices: docs-v1, docs-v2"):
        resolve(b, "docs")


def test_ensure_is_idempotent_and_numbers_after_the_newest_version() -> None:
    spec = IndexSpec(name="docs", embedding={"model": "tiny", "dimension": 8})
    b = FakeBackend()
    state, created = ensure(b, spec)
    assert created and state.index == "docs-v1"
    assert ensure(b, spec)[1] is False
    assert b.calls == [("create_index", "docs-v1")]
    # the alias is gone but versions remain: the next one is created, never an old one reused
    b = FakeBackend(["docs-v1", "docs-v7"])
    state, created = ensure(b, spec)
    assert created and state.index == "docs-v8"
    fallbacks = state.xlidx_meta["analyzer_fallbacks"]
    assert "en" not in fallbacks and "fr" not in fallbacks and fallbacks["de"] == "german"
