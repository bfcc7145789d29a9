#!/usr/bin/env bash
# Run the train CLI on the shared Bitcoin data and print the test metrics beside the
# persistence baseline and the gate decision.
# Usage: components/train/local_test.sh [FEATURES_DIR [BEST_PARAMS_JSON]]
# Without FEATURES_DIR the transform CLI first builds one in a temp dir from
# $CRYPTO_DATA_DIR/crypto-markets.csv (default: ../shared/data next to the project).
# Without BEST_PARAMS_JSON the built-in default hyper-parameters are used.
# Budget: EPOCHS (default 60; early stopping usually ends sooner).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA_DIR="${CRYPTO_DATA_DIR:-$ROOT/../shared/data}"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
OUT="$(mktemp -d -t train-XXXXXX)"
cd "$ROOT"
FEATURES="${1:-}"
if [ -z "$FEATURES" ]; then
  FEATURES="$OUT/features"
  "$PY" -m components.transform "$DATA_DIR/crypto-markets.csv" --output-dir "$FEATURES" --coins bitcoin -q
fi
PARAMS=()
[ -n "${2:-}" ] && PARAMS=(--best-params "$2")
"$PY" -m components.train "$FEATURES" --output-dir "$OUT/train" --epochs "${EPOCHS:-60}" "${PARAMS[@]}" -q
echo "outputs kept in $OUT"
