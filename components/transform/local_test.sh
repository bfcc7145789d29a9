#!/usr/bin/env bash
# Run the transform CLI on the shared data into a temp dir and print the stats summary.
# Usage: components/transform/local_test.sh [COINS]   (default: all)
# The data folder comes from CRYPTO_DATA_DIR (default: ../shared/data next to the project).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../local_test_env.sh"
OUT="$(mktemp -d -t transform-XXXXXX)"
"$PY" -m components.transform "$DATA_DIR/crypto-markets.csv" --output-dir "$OUT" --coins "${1:-all}" -q
echo
ls -l "$OUT"
"$PY" - "$OUT/stats.json" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
print(f"input {stats['input_rows']}  accepted {stats['accepted_rows']}  rejected {stats['rejected_rows']}")
for split, info in stats["splits"].items():
    print(f"{split:<6} {info['rows']:>6} rows  {info['start']} .. {info['end']}")
print("train mean/std of target:", stats["mean"]["target"], stats["std"]["target"])
PY
echo "outputs kept in $OUT"
