#!/usr/bin/env bash
# Run the tune CLI on the shared Bitcoin data with a small budget.
# Usage: components/tune/local_test.sh [FEATURES_DIR]
# Without FEATURES_DIR the transform CLI first builds one in a temp dir from
# $CRYPTO_DATA_DIR/crypto-markets.csv (default: ../shared/data next to the project).
# Budget: N_TRIALS (default 6), MAX_EPOCHS (default 20).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA_DIR="${CRYPTO_DATA_DIR:-$ROOT/../shared/data}"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
OUT="$(mktemp -d -t tune-XXXXXX)"
cd "$ROOT"
FEATURES="${1:-}"
if [ -z "$FEATURES" ]; then
  FEATURES="$OUT/features"
  "$PY" -m components.transform "$DATA_DIR/crypto-markets.csv" --output-dir "$FEATURES" --coins bitcoin -q
fi
"$PY" -m components.tune "$FEATURES" --output-dir "$OUT/tune" \
  --n-trials "${N_TRIALS:-6}" --max-epochs "${MAX_EPOCHS:-20}" -q
echo
cat "$OUT/tune/best_params.json"
echo "outputs kept in $OUT"
