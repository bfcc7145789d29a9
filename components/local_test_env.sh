# Sourced by the transform, tune and train local_test.sh scripts: the project root (the
# working directory from here on), the data folder and the Python to run.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${CRYPTO_DATA_DIR:-$ROOT/../shared/data}"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
cd "$ROOT"

# features_dir GIVEN OUT: sets FEATURES to GIVEN, or, when GIVEN is empty, builds the
# Bitcoin features from the shared data in OUT/features with the transform CLI.
features_dir() {
  FEATURES="${1:-}"
  if [ -z "$FEATURES" ]; then
    FEATURES="$2/features"
    "$PY" -m components.transform "$DATA_DIR/crypto-markets.csv" --output-dir "$FEATURES" \
      --coins bitcoin -q
  fi
}
