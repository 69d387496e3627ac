#!/usr/bin/env bash
# The README's second command: install everything, lint, type-check, run the whole test suite.
# Integration tests start (or reuse) the dev node themselves; under CI=true a server they
# cannot get is a failure, never a skip. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
