#!/usr/bin/env bash
# Build the peer servers that benchmarks/bench_serve.py compares `xlidx serve` against.
#
# Peers are baselines, never dependencies of xlidx: each gets its own virtual environment,
# outside the repository (see /work/shared/PEERS.md for why each pin is there):
#
#   $PEERS/infinity/        infinity-emb[server,torch] 0.0.78, transformers<5,
#                           sentence-transformers<5, click<8.2
#   $PEERS/libretranslate/  libretranslate 1.9.6, plus spaCy: its default sentence splitter
#                           (MiniSBD) downloads an ONNX model on the first /translate, which
#                           fails offline; with ARGOS_CHUNK_TYPE=SPACY argos uses the blank
#                           spaCy pipeline inside our packages instead
#   $PEERS/e5-small-old/    multilingual-e5-small rewritten in the pre-6 sentence-transformers
#                           format that infinity's older libraries can read (old_format.py)
#   $PEERS/argos-packages/  the argos package both xlidx and LibreTranslate translate with
#                           (ARGOS_PACKAGES_DIR for both servers; build_argos_package.py)
#
# Idempotent: finished steps are skipped. Usage, from the repository root:
#   bash benchmarks/peers/setup.sh
# Environment: XLIDX_PEERS_DIR (default ~/.cache/xlidx/peers), PYTHON (default python3.11),
# XLIDX_E5_SMALL_DIR (default ~/.cache/xlidx/models/multilingual-e5-small).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PEERS="${XLIDX_PEERS_DIR:-$HOME/.cache/xlidx/peers}"
PY="${PYTHON:-python3.11}"
E5="${XLIDX_E5_SMALL_DIR:-$HOME/.cache/xlidx/models/multilingual-e5-small}"
REPO_PY="$REPO/.venv/bin/python"
mkdir -p "$PEERS"

log() { printf '[peers] %s\n' "$*" >&2; }

# The CPU-only torch wheels are much smaller than PyPI's CUDA ones; use them when reachable.
TORCH_ARGS=()
if "$PY" - <<'PYEOF' 2>/dev/null; then
import urllib.request
urllib.request.urlopen("https://download.pytorch.org/whl/cpu/torch/", timeout=10)
PYEOF
  TORCH_ARGS=(--extra-index-url https://download.pytorch.org/whl/cpu)
  log "CPU torch index reachable: using it"
else
  log "CPU torch index not reachable: torch comes from PyPI"
fi

make_venv() {  # make_venv NAME PIP-ARGS...
  local name="$1"; shift
  local venv="$PEERS/$name"
  if [[ -f "$venv/.done" ]]; then
    log "$name: already installed"
    return
  fi
  log "$name: creating $venv"
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q ${TORCH_ARGS[@]+"${TORCH_ARGS[@]}"} "$@"
  "$venv/bin/python" -m pip freeze > "$venv/requirements.lock"
  touch "$venv/.done"
}

make_venv infinity "infinity-emb[server,torch]==0.0.78" "transformers<5" \
  "sentence-transformers<5" "click<8.2"
make_venv libretranslate "libretranslate==1.9.6" "spacy>=3.7,<4"

log "e5-small in the old format -> $PEERS/e5-small-old"
"$PEERS/infinity/bin/python" "$HERE/old_format.py" "$E5" "$PEERS/e5-small-old"

log "argos package -> $PEERS/argos-packages"
"$REPO_PY" "$HERE/build_argos_package.py" --out "$PEERS"

log "done; start a peer by hand with: bash $HERE/run.sh infinity|libretranslate [PORT]"
