#!/usr/bin/env bash
# Run the ingest CLI on the shared data into a temporary lake, twice: the first run
# stores the file, the second finds the same bytes already there and stores nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data_dir="${CRYPTO_DATA_DIR:-$repo/../shared/data}"
source_csv="$data_dir/crypto-markets.csv"
python="${PYTHON:-$repo/.venv/bin/python}"
[[ -x "$python" ]] || python=python3

if [[ ! -f "$source_csv" ]]; then
  echo "local_test: $source_csv not found; set CRYPTO_DATA_DIR to the folder holding it" >&2
  exit 1
fi

lake="$(mktemp -d "${TMPDIR:-/tmp}/ingest-lake.XXXXXX")"
trap 'rm -rf "$lake"' EXIT
cd "$repo"
# The shared copy holds the same bytes as the pinned URL, so the pinned hash applies.
sha256="$("$python" -c 'from components.ingest.ingest import DEFAULT_SHA256; print(DEFAULT_SHA256)')"

echo "== run 1: $source_csv -> $lake"
"$python" -m components.ingest --source "$source_csv" --lake "$lake" --sha256 "$sha256" \
  --output "$lake/artifact/raw.csv"
echo "== run 2: same bytes again"
second="$("$python" -m components.ingest --source "$source_csv" --lake "$lake" --sha256 "$sha256")"
echo "$second"

echo "== lake contents"
(cd "$lake" && find . -type f | sort)
cmp "$source_csv" "$lake/artifact/raw.csv"
stored="$(find "$lake/raw" -type f ! -name '*.metadata.json' | wc -l)"
if [[ "$second" != already* || "$stored" -ne 1 ]]; then
  echo "local_test: FAILED: the second run stored something new ($stored raw objects)" >&2
  exit 1
fi
echo "local_test: OK (one raw object; the second run stored nothing new)"
