"""The environment is read in xlidx/config.py only (and handed to child processes by writing
``os.environ[NAME] = value``): a scan of the source of xlidx/ and workers/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Reads not yet moved into xlidx/config.py; shrink this as they move.
PENDING: set[str] = set()


def env_reads(tree: ast.AST) -> list[int]:
    """Line numbers of ``os.environ``/``os.environb``/``getenv`` uses other than
    ``os.environ[...] = value``."""
    writes = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if {a.name for a in node.names} & {"environ", "environb", "getenv", "getenvb"}:
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in {"environ", "environb"}:
            if id(node) not in writes:
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute | ast.Name) and (
            getattr(node, "attr", None) in {"getenv", "getenvb"}
            or getattr(node, "id", None) in {"getenv", "getenvb"}
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_scan_finds_reads_and_lets_writes_pass() -> None:
    code = (
        "import os\nfrom os import getenv\nos.environ['A'] = 'x'\na = os.environ.get('A')\n"
        "b = os.getenv('B')\nc = {**os.environ}\nd = os.environ['A']\n"
    )
    assert env_reads(ast.parse(code)) == [2, 4, 5, 6, 7]


def test_only_config_reads_the_environment() -> None:
    found = {}
    for path in sorted([*ROOT.glob("xlidx/**/*.py"), *ROOT.glob("workers/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "xlidx/config.py" or rel in PENDING:
            continue
        lines = env_reads(ast.parse(path.read_text(encoding="utf-8"), filename=rel))
        if lines:
            found[rel] = lines
    assert found == {}, "read the environment through xlidx/config.py"
