"""What an evaluation is asked for, checked: its modes, its fusion, and a paired comparison's
two sides and test (``xlidx eval --mode … --fusion … --compare A,B --test …``).

A side is a mode of the same evaluation (``hybrid``, ``bm25``, ``knn``), another xlidx index
(evaluated with the same settings in the first mode), or a saved TREC run file. The messages
name the CLI's flags, which are also the workflow's parameter names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xlidx.errors import ConfigError
from xlidx.eval.compare import TESTS
from xlidx.query.plan import MODES

SideKind = Literal["mode", "index", "file"]
RUN_FILE_SUFFIXES = (".trec", ".run", ".txt", ".tsv")
FUSION_METHODS = ("minmax", "rrf")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: ``Side("mode", "bm25")``, ``Side("index", "news-old")`` or
    ``Side("file", "runs/a.trec")``."""

    kind: SideKind
    value: str

    @classmethod
    def parse(cls, text: str) -> Side:
        """A mode name, an existing file (a TREC run), else an index; a name that looks like
        a run file (``.trec``, ``.run``, ``.txt``, ``.tsv``) but is not there is an error."""
        if text in MODES:
            return cls("mode", text)
        path = Path(text).expanduser()
        if path.is_file():
            return cls("file", str(path))
        if text.endswith(RUN_FILE_SUFFIXES):
            raise ConfigError(f"--compare: run file not found: {text}")
        return cls("index", text)

    def label(self, first_mode: str = "") -> str:
        """How the comparison names this side: the mode, ``<first mode> · <index>``, or the
        run file's name."""
        if self.kind == "index":
            return f"{first_mode} · {self.value}"
        return Path(self.value).name if self.kind == "file" else self.value


Sides = tuple[Side, Side]


def parse_compare(value: str) -> Sides:
    """``"A,B"`` → two sides (:meth:`Side.parse`)."""
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ConfigError(f"--compare takes two different runs A,B, got {value!r}")
    return Side.parse(parts[0]), Side.parse(parts[1])


def as_sides(compare: str | Sequence[Side | str]) -> Sides:
    """Two sides from ``"A,B"`` or from a pair of :class:`Side` or strings."""
    if isinstance(compare, str):
        return parse_compare(compare)
    pair = [c if isinstance(c, Side) else Side.parse(c) for c in compare]
    if len(pair) != 2 or pair[0] == pair[1]:
        raise ConfigError(f"--compare takes two different runs A,B, got {list(compare)!r}")
    return pair[0], pair[1]


def check_test(test: str, *, comparing: bool) -> str:
    """``test`` is a paired test ranx knows; anything but the default needs a comparison."""
    if test not in TESTS:
        raise ConfigError(f"unknown --test {test!r}: expected {', '.join(TESTS)}")
    if test != "student" and not comparing:
        raise ConfigError("--test applies with --compare A,B")
    return test


def check_modes(modes: str | Iterable[str]) -> tuple[str, ...]:
    """Modes in order, lower case, each once (a string: comma-separated)."""
    names = modes.split(",") if isinstance(modes, str) else modes
    out = tuple(dict.fromkeys(m.strip().lower() for m in names if m.strip()))
    if not out:
        raise ConfigError("--mode is empty: give hybrid, bm25 and/or knn")
    for m in out:
        if m not in MODES:
            raise ConfigError(f"unknown mode {m!r}: expected {', '.join(MODES)}")
    return out


def check_fusion(fusion: str | None) -> str | None:
    if fusion is not None and fusion not in FUSION_METHODS:
        raise ConfigError(f"unknown fusion {fusion!r}: expected minmax or rrf")
    return fusion
