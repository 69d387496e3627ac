#!/usr/bin/env bash
# The README's second command: install everything, lint, check the layers, type-check, build
# the docs, run the whole test suite (on two pytest-xdist workers, one test file per worker
# at a time, the slowest files first). Three workers were faster on the 2 cores but slowed the
# model-heavy tests twofold and broke the fault tests' short time limits. Integration tests
# start (or reuse) the dev node themselves; under CI=true a server they cannot get is a
# failure, never a skip. Extra arguments go to pytest; XLIDX_TEST_WORKERS sets the number of
# workers (default 2; 0 runs in one process).
#
# --fast: the unit lane only (tests/unit, no integration test, no real model): no install,
# no mypy, no server, about 35 s. For the edit-test loop; the whole suite stays the check.
# It runs in one process: two xdist workers each pay the one-time loads (lingua's models,
# ranx's compiled kernels) that dominate it, and were slower on 2 cores (pass -n 2 to try).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fast" ]; then
  shift
  if [ ! -x .venv/bin/python ]; then
    echo "test.sh --fast: no .venv yet; run scripts/install.sh --test (or scripts/test.sh) once" >&2
    exit 1
  fi
  exec .venv/bin/python -m pytest tests/unit -m "not integration and not models" "$@"
fi

bash scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy
if [ -f mkdocs.yml ]; then
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
fi
.venv/bin/python -m pytest -n "${XLIDX_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
