#!/usr/bin/env bash
# Transform → tune → train on the shared Bitcoin data with the pipeline's default settings,
# printing the test metrics beside the persistence baseline, mae_ratio and the gate decision.
# Usage: components/train/local_test.sh [FEATURES_DIR [BEST_PARAMS_JSON]]
# Without FEATURES_DIR the transform CLI first builds one in a temp dir from
# $CRYPTO_DATA_DIR/crypto-markets.csv (default: ../shared/data next to the project).
# Without BEST_PARAMS_JSON the tune CLI runs first (N_TRIALS, default 16: about a minute).
# EPOCHS caps training (default 200; early stopping ends far sooner). SEED default 42.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../local_test_env.sh"
OUT="$(mktemp -d -t train-XXXXXX)"
SEED="${SEED:-42}"
features_dir "${1:-}" "$OUT"
PARAMS="${2:-}"
if [ -z "$PARAMS" ]; then
  "$PY" -m components.tune "$FEATURES" --output-dir "$OUT/tune" --n-trials "${N_TRIALS:-16}" --seed "$SEED" -q
  PARAMS="$OUT/tune/best_params.json"
fi
"$PY" -m components.train "$FEATURES" --output-dir "$OUT/train" --best-params "$PARAMS" \
  --epochs "${EPOCHS:-200}" --seed "$SEED" -q
echo "outputs kept in $OUT"
