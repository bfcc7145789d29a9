"""The transform's outputs on the shared data, as a compact golden record.

``golden.json`` (beside this file) was written by this script with the row-at-a-time
transform, before the vectorised one replaced it; ``test_golden.py`` runs today's transform
on the same inputs and compares. Per case it holds, for every shard, the row count, the
SHA-256 of the file's bytes and a sample of rows as written (``repr`` floats: full
precision); ``stats.json`` without the machine-specific ``input`` path; and the SHA-256 and
text of ``rejected.csv``.

Cases: the shared file with ``--coins all`` and with the default ``bitcoin``; and the
shared file with injected bad, blank, duplicate and quoted lines (``injected_lines``), so
the rejection reasons, texts and line numbers are covered too.

The "injected" case was regenerated once since, by the transform that rejects conflicting
duplicates (issue 12): its litecoin day with other prices now rejects both lines, and its
bitcoin duplicate became an exact copy of the real line so that dropping one is still
pinned. The two cases of the shared file are the row-at-a-time transform's, unchanged.

Regenerate (only when the outputs are meant to change):

    CRYPTO_DATA_DIR=<folder with crypto-markets.csv> python -m tests.components.transform.golden
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

GOLDEN_PATH = Path(__file__).with_name("golden.json")
#: Every SAMPLE_EVERY-th shard row (and the first and last) is stored in full.
SAMPLE_EVERY = 499

#: name → (input: "shared" or "injected", run keyword arguments)
CASES: dict[str, tuple[str, dict]] = {
    "all": ("shared", {"coins": "all"}),
    "bitcoin": ("shared", {}),
    "injected": ("injected", {"coins": "all", "max_rejected_fraction": 1.0}),
}

#: Lines inserted into the shared file (1-based line number before which each goes).
INJECTED = [
    (2, "bitcoin,BTC,Bitcoin,1/1/2019,1,0,10,9,9.5,100,1,0.5,1"),
    (50, "bitcoin,BTC,Bitcoin,2/1/2019,1,9.5,9,10,9.5,100,1,0.5,1"),
    (120, "bitcoin,BTC,Bitcoin,3/1/2019,1,9.5,10,9,12,100,1,0.5,1"),
    (700, "bitcoin,BTC,Bitcoin,4/1/2019,1,5,10,9,9.5,100,1,0.5,1"),
    (1500, "bitcoin,BTC,Bitcoin,5/1/2019,1,9.5,10,9,9.5,-1,1,0.5,1"),
    (2500, "bitcoin,BTC,Bitcoin,32/1/2019,1,9.5,10,9,9.5,100,1,0.5,1"),
    (3000, "bitcoin,BTC,Bitcoin,6/1/2019,1,9.5,ten,9,9.5,100,1,0.5,1"),
    (4000, "bitcoin,BTC,Bitcoin,7/1/2019,1,9.5,10,,9.5,100,1,0.5,1"),
    (5000, "bitcoin,BTC,Bitcoin,8/1/2019,1,9.5,10,9,9.5,100,1,0.5,1,1"),
    (6000, 'bitcoin,BTC,"Bitcoin,9/1/2019,1,9.5,10,9,9.5,100,1,0.5,1'),
    (7000, "ethereum,ETH,Ethereum,10/1/2019,1,9.5,10,9,9.5,nan,1,0.5,1"),
    (7001, "ethereum,ETH,Ethereum,11/1/2019,1,9.5,10,9,9.5,1_000,1,0.5,1"),
    (8000, "ethereum,ETH,Ethereum,2019-02-30,1,9.5,10,9,9.5,100,1,0.5,1"),
    (9000, "ethereum,ETH,Ethereum,12/1/2019"),
    (10000, ""),
    (10001, "   "),
    (11000, "ripple,XRP,Ripple,1/1/2019,1,9.5,10.05,9,9.5,100,1,0.5,1\r"),
    (12000, 'quoted-coin,QC,"Quoted, Coin",1/1/2019,1,"9.5",10,9,9.5,1.5E+3,1,0.5,1'),
    (12001, "quoted-coin,QC,Quoted,2/1/2019,1, 9.5 ,10,9,9.5,1.5E+3,1,0.5,1"),
    # Duplicate dates: a bitcoin day again, the same line (dropped, the earlier line kept),
    # and a litecoin day again with other prices (both lines rejected as
    # conflicting_duplicate).
    (20000, "bitcoin,BTC,Bitcoin,1/5/2013,1,139,139.89,107.72,116.99,0,1542820000,0.2882,32.17"),
    (20001, "Litecoin,LTC,Litecoin,5/5/2014,1,10,11,9,10.5,2E+6,1,0.5,1"),
]


def data_dir() -> Path:
    from tests.conftest import _data_dir

    return _data_dir()


def injected_lines(shared: Path) -> list[str]:
    """The shared file's lines with ``INJECTED`` inserted (numbers are final positions)."""
    lines = shared.read_text().splitlines()
    for at, text in INJECTED:
        lines.insert(at - 1, text)
    return lines


def write_input(kind: str, folder: Path) -> Path:
    shared = data_dir() / "crypto-markets.csv"
    if kind == "shared":
        return shared
    path = folder / "injected.csv"
    path.write_text("\n".join(injected_lines(shared)) + "\n")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(out: Path) -> dict:
    """The compact golden record of one transform output folder."""
    shards = {}
    for shard in sorted(out.glob("*-*-of-*.csv")):
        lines = shard.read_text().splitlines()
        rows = lines[1:]
        picked = sorted({0, len(rows) - 1, *range(0, len(rows), SAMPLE_EVERY)} - {-1})
        shards[shard.name] = {
            "rows": len(rows),
            "sha256": sha256(shard),
            "header": lines[0],
            "samples": {str(i): rows[i] for i in picked},
        }
    stats = json.loads((out / "stats.json").read_text())
    stats.pop("input")
    rejected = out / "rejected.csv"
    return {
        "shards": shards,
        "stats": stats,
        "rejected_sha256": sha256(rejected),
        "rejected_text": rejected.read_text(),
    }


def run_case(name: str, folder: Path) -> dict:
    from components.transform import RejectedRowsError
    from tests.components.transform.outputs import run_transform

    kind, kwargs = CASES[name]
    source = write_input(kind, folder)
    out = folder / f"out-{name}"
    try:
        run_transform(str(source), str(out), **kwargs)
    except RejectedRowsError:
        pass
    return record(out)


def main() -> None:
    import logging

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        golden = {name: run_case(name, Path(tmp)) for name in CASES}
    GOLDEN_PATH.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN_PATH.name}: {', '.join(golden)}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
