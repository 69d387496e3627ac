#!/usr/bin/env bash
# The README's first command: install everything, then run the main job on the local dev node.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/xlidx dev up --with-redis
.venv/bin/xlidx dev status
