#!/usr/bin/env bash
# Publish a trained model directory into a temporary model repository, serve it with the
# local model server on a free port, and forecast the next day's close from the last
# HISTORY_DAYS (31) days of the shared Bitcoin file.
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") MODEL_DIR

MODEL_DIR is a train output in TF-Serving layout: MODEL_DIR/<version>/saved_model.pb
(for example the model artifact of a 'make local' run). The model is published into a
temporary repository, smoke-tested, served on 127.0.0.1, and asked for one forecast
from \${CRYPTO_DATA_DIR:-../shared/data}/crypto-markets-bitcoin.csv. Nothing is kept.
USAGE
}
if [[ $# -eq 1 && ( "$1" == "-h" || "$1" == "--help" ) ]]; then usage; exit 0; fi
if [[ $# -ne 1 ]]; then usage >&2; exit 2; fi
model_dir="$1"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data_dir="${CRYPTO_DATA_DIR:-$repo/../shared/data}"
bitcoin_csv="$data_dir/crypto-markets-bitcoin.csv"
python="${PYTHON:-$repo/.venv/bin/python}"
[[ -x "$python" ]] || python=python3
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

if [[ ! -f "$bitcoin_csv" ]]; then
  echo "local_test: $bitcoin_csv not found; set CRYPTO_DATA_DIR to the folder holding it" >&2
  exit 1
fi
model_dir="$(cd "$model_dir" 2>/dev/null && pwd)" || {
  echo "local_test: model directory not found: $1" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/deploy-local-test.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$repo"
name=btc-forecast

echo "== publish $model_dir -> $tmp/repository/$name"
"$python" -m components.deploy publish "$model_dir" --model-repository "$tmp/repository" \
  --model-name "$name" --source-run local_test.sh

echo "== serve"
"$python" -m components.deploy serve --model-repository "$tmp/repository" --model-name "$name" \
  --port 0 >"$tmp/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 240); do
  url="$(grep -o 'http://[^ ]*' "$tmp/server.log" | head -n 1 || true)"
  [[ -n "$url" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "local_test: FAILED: the server exited:" >&2; cat "$tmp/server.log" >&2; exit 1
  fi
  sleep 0.25
done
if [[ -z "$url" ]]; then
  echo "local_test: FAILED: the server did not start within 60 s:" >&2; cat "$tmp/server.log" >&2; exit 1
fi
echo "$url"

echo "== forecast from the last days of $bitcoin_csv"
"$python" - "$bitcoin_csv" "$url" <<'PY'
import csv, json, math, sys, urllib.error, urllib.request

from components.common.features import HISTORY_DAYS

csv_path, url = sys.argv[1:]
with open(csv_path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))[-HISTORY_DAYS:]
history = [{"date": r["date"], **{k: float(r[k]) for k in ("open", "high", "low", "close", "volume")}}
           for r in rows]
body = {"instances": [{"history": history}]}
request = urllib.request.Request(url + ":predict", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
try:
    with urllib.request.urlopen(request, timeout=60) as response:
        (answer,) = json.loads(response.read())["predictions"]
except urllib.error.HTTPError as err:
    sys.exit(f"local_test: FAILED: HTTP {err.code}: {err.read().decode()}")
print(json.dumps(answer, indent=2))
if not math.isfinite(answer["predicted_close"]) or answer["predicted_close"] <= 0:
    sys.exit("local_test: FAILED: the forecast is not a positive finite price")
print(f"local_test: OK ({answer['as_of']} close {answer['close']:.2f} -> "
      f"{answer['date']} forecast {answer['predicted_close']:.2f})")
PY
