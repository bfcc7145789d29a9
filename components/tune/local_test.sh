#!/usr/bin/env bash
# Run the tune CLI on the shared Bitcoin data with a small budget.
# Usage: components/tune/local_test.sh [FEATURES_DIR]
# Without FEATURES_DIR the transform CLI first builds one in a temp dir from
# $CRYPTO_DATA_DIR/crypto-markets.csv (default: ../shared/data next to the project).
# Budget: N_TRIALS (default 6), MAX_EPOCHS (default 20).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../local_test_env.sh"
OUT="$(mktemp -d -t tune-XXXXXX)"
features_dir "${1:-}" "$OUT"
"$PY" -m components.tune "$FEATURES" --output-dir "$OUT/tune" \
  --n-trials "${N_TRIALS:-6}" --max-epochs "${MAX_EPOCHS:-20}" -q
echo
cat "$OUT/tune/best_params.json"
echo "outputs kept in $OUT"
