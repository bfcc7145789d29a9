"""Puts the test data where the tests look for it (CRYPTO_DATA_DIR) on a CI runner.

Downloads the pinned public CSV, checks its SHA-256, and derives the Bitcoin-only file the
tests also read (ISO dates, nothing else changed), checking that one's SHA-256 too.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.request
from pathlib import Path

SOURCE = (
    "https://raw.githubusercontent.com/ernestsoo/ndd3/"
    "17ad1c7af6fb8586a86707324d51a157f0cc9654/crypto-markets.csv"
)
FULL_SHA256 = "4dd246ed93318ea4dfa0fd1226080c74422a6e08909e85e63da11522adaf302d"
BITCOIN_SHA256 = "25255c2761afd780df7b80668d5d94a4488e1cdeab331119889be56347586bd4"


def _check(data: bytes, expected: str, name: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        sys.exit(f"{name}: SHA-256 {actual}, expected {expected}")


def bitcoin_rows(full: bytes) -> bytes:
    """The header and the Bitcoin rows with d/m/yyyy dates written as yyyy-mm-dd."""
    header, *rows = full.split(b"\n")
    out = [header]
    for row in rows:
        fields = row.split(b",")
        if fields[0] == b"bitcoin":
            day, month, year = fields[3].split(b"/")
            fields[3] = b"%s-%02d-%02d" % (year, int(month), int(day))
            out.append(b",".join(fields))
    return b"\n".join(out) + b"\n"


def main(target: str) -> None:
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(SOURCE, timeout=60) as response:
        full = response.read()
    _check(full, FULL_SHA256, "crypto-markets.csv")
    bitcoin = bitcoin_rows(full)
    _check(bitcoin, BITCOIN_SHA256, "crypto-markets-bitcoin.csv")
    (folder / "crypto-markets.csv").write_bytes(full)
    (folder / "crypto-markets-bitcoin.csv").write_bytes(bitcoin)


if __name__ == "__main__":
    main(sys.argv[1])
