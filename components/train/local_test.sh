#!/usr/bin/env bash
# Transform → tune → train on the shared Bitcoin data with the pipeline's default settings,
# printing the test metrics beside the persistence baseline, mae_ratio and the gate decision.
# Usage: components/train/local_test.sh [FEATURES_DIR [BEST_PARAMS_JSON]]
# Without FEATURES_DIR the transform CLI first builds one in a temp dir from
# $CRYPTO_DATA_DIR/crypto-markets.csv (default: ../shared/data next to the project).
# Without BEST_PARAMS_JSON the tune CLI runs first (N_TRIALS, default 16: about a minute).
# EPOCHS caps training (default 200; early stopping ends far sooner). SEED default 42.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA_DIR="${CRYPTO_DATA_DIR:-$ROOT/../shared/data}"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
OUT="$(mktemp -d -t train-XXXXXX)"
SEED="${SEED:-42}"
cd "$ROOT"
FEATURES="${1:-}"
if [ -z "$FEATURES" ]; then
  FEATURES="$OUT/features"
  "$PY" -m components.transform "$DATA_DIR/crypto-markets.csv" --output-dir "$FEATURES" --coins bitcoin -q
fi
PARAMS="${2:-}"
if [ -z "$PARAMS" ]; then
  "$PY" -m components.tune "$FEATURES" --output-dir "$OUT/tune" --n-trials "${N_TRIALS:-16}" --seed "$SEED" -q
  PARAMS="$OUT/tune/best_params.json"
fi
"$PY" -m components.train "$FEATURES" --output-dir "$OUT/train" --best-params "$PARAMS" \
  --epochs "${EPOCHS:-200}" --seed "$SEED" -q
echo "outputs kept in $OUT"
