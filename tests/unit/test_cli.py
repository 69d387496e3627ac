"""The CLI as a user runs it (in-process through ``run_cli``, with the same error lines and
exit codes as ``xlidx.cli.main``), for everything that needs no server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, run_cli
from xlidx import __version__

HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "argostranslate",
    "ctranslate2",
    "lingua",
)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["dev", "--help"], ["index", "--help"], ["models", "--help"], ["--version"]],
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from xlidx.cli import app\n"
        "try:\n"
        f"    app({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert "HEAVY=\n" in proc.stderr or proc.stderr.rstrip().endswith("HEAVY="), proc.stderr


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"xlidx {__version__}"


def test_help_lists_every_command_group() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for group in ("ingest", "query", "index", "worker", "eval", "models", "dev", "info"):
        assert f" {group} " in proc.stdout, group


def test_secrets_never_in_help() -> None:
    env = {"XLIDX_PASSWORD": "canary-pw-123", "XLIDX_API_KEY": "canary-key-456"}
    for argv in (["--help"], ["info", "--help"], ["dev", "status", "--help"]):
        proc = run_cli(*argv, env=env)
        assert proc.returncode == 0
        assert "canary" not in proc.stdout + proc.stderr


def test_usage_error_exits_2() -> None:
    proc = run_cli("dev", "up", "--port", "not-a-number")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    proc = run_cli("--backend", "solr", "info")
    assert proc.returncode == 2 and "'solr' is not one of" in proc.stderr


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_unreachable_cluster_is_one_line_with_either_client(engine: str) -> None:
    """With --backend no probe runs: the engine's own client meets the closed port."""
    port = free_port()
    proc = run_cli("--url", f"http://127.0.0.1:{port}", "--backend", engine, "index", "list")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: cannot connect to http://127.0.0.1:{port}"
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--url", "localhost:9200", "info"], {}, "invalid cluster URL 'localhost:9200'"),
        (["--timeout", "-1", "info"], {}, "timeout must be positive"),
        (["info"], {"XLIDX_VERIFY_CERTS": "perhaps"}, "XLIDX_VERIFY_CERTS must be true or false"),
        (["--config", "/nonexistent/xlidx.toml", "info"], {}, "config file not found"),
        (["--password", "canary-pw-9", "info"], {}, "a password is set but no username"),
        (["info"], {"XLIDX_BACKEND": "solr"}, "unknown backend 'solr'"),
        (
            ["ingest", "-", "--index", "docs", "--retry-for", "a while"],
            {},
            "--retry-for must be a duration such as 90s, 10m or 1h, got 'a while'",
        ),
        (
            ["ingest", "-", "--index", "docs"],
            {"XLIDX_RETRY_FOR": "forever"},
            "XLIDX_RETRY_FOR must be a duration",
        ),
        (
            ["index", "calibrate", "docs", "--centering", "sometimes"],
            {},
            "unknown centering 'sometimes': expected auto, on, off",
        ),
    ],
)
def test_bad_settings_give_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    proc = run_cli(*args, env=env)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "canary" not in proc.stderr


def test_unreachable_cluster_is_one_line() -> None:
    port = free_port()  # nothing listens there
    proc = run_cli("--url", f"http://user:canary-pw@127.0.0.1:{port}", "info", "--json")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: cannot connect to http://127.0.0.1:{port}")
    assert "canary" not in proc.stderr


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('[connection]\npassword = "canary-pw"\nusername = \n')
    proc = run_cli("--config", str(cfg), "info")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: config file") and "not valid TOML" in proc.stderr
    assert "canary" not in proc.stderr
