#!/usr/bin/env bash
# Run one peer server in the foreground, offline, as benchmarks/bench_serve.py --start-peers does.
#   bash benchmarks/peers/run.sh infinity [PORT]        # default 7997; POST /embeddings
#   bash benchmarks/peers/run.sh libretranslate [PORT]  # default 5000; POST /translate
# Build the peers first: bash benchmarks/peers/setup.sh
set -euo pipefail
PEERS="${XLIDX_PEERS_DIR:-$HOME/.cache/xlidx/peers}"
export HF_HUB_OFFLINE=1
case "${1:-}" in
  infinity)
    export DO_NOT_TRACK=1 INFINITY_ANONYMOUS_USAGE_STATS=0
    exec "$PEERS/infinity/bin/infinity_emb" v2 --model-id "$PEERS/e5-small-old" \
      --served-model-name multilingual-e5-small --host 127.0.0.1 --port "${2:-7997}" \
      --engine torch --device cpu --no-model-warmup
    ;;
  libretranslate)
    H="$PEERS/lt-home"
    # argos would download spaCy's xx_sent_ud_sm at import unless this folder exists; the
    # packages carry a blank spaCy pipeline, which is what it uses
    mkdir -p "$H/cache/argos-translate/spacy/senter/model"
    export ARGOS_PACKAGES_DIR="$PEERS/argos-packages" ARGOS_CHUNK_TYPE=SPACY \
      ARGOS_DEVICE_TYPE=cpu XDG_DATA_HOME="$H/data" XDG_CACHE_HOME="$H/cache" \
      XDG_CONFIG_HOME="$H/config"
    exec "$PEERS/libretranslate/bin/libretranslate" --host 127.0.0.1 --port "${2:-5000}" \
      --load-only en,fr --disable-web-ui
    ;;
  *)
    echo "usage: $0 infinity|libretranslate [PORT]" >&2
    exit 2
    ;;
esac
