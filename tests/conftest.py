"""Shared fixtures: where the real data lives.

The data is not part of the project. ``CRYPTO_DATA_DIR`` points at it; the default is the
workspace's ``shared/data`` folder next to the project checkout (or next to a parent). A
missing file is a test failure, not a skip: CI must not pass without having read the data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
FULL_CSV_SHA256 = "4dd246ed93318ea4dfa0fd1226080c74422a6e08909e85e63da11522adaf302d"


def _data_dir() -> Path:
    """``CRYPTO_DATA_DIR``, else the nearest ``shared/data`` beside the checkout or beside
    one of its parent folders (a CI checkout may sit one level deeper than a work tree)."""
    if "CRYPTO_DATA_DIR" in os.environ:
        return Path(os.environ["CRYPTO_DATA_DIR"]).resolve()
    for ancestor in PROJECT_ROOT.parents:
        candidate = ancestor / "shared" / "data"
        if (candidate / "crypto-markets.csv").is_file():
            return candidate.resolve()
    return DEFAULT_DATA_DIR.resolve()


# Subprocesses started by tests (CLIs, local_test.sh scripts) find the same folder.
os.environ.setdefault("CRYPTO_DATA_DIR", str(_data_dir()))


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(
            f"test data not found: {path}. Set CRYPTO_DATA_DIR to the folder holding "
            "crypto-markets.csv and crypto-markets-bitcoin.csv."
        )
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _data_dir()


@pytest.fixture(scope="session")
def crypto_csv(data_dir: Path) -> Path:
    """The full 44-coin file, byte-identical to the pinned GitHub source."""
    return _require(data_dir / "crypto-markets.csv")


@pytest.fixture(scope="session")
def bitcoin_csv(data_dir: Path) -> Path:
    """Bitcoin rows only, ISO dates."""
    return _require(data_dir / "crypto-markets-bitcoin.csv")
