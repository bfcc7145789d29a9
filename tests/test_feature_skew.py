"""No training/serving skew: the Beam transform and the model server compute identical
features for the same days of raw history (DESIGN principle 2)."""

import csv

import pandas as pd
import pytest

from components.common.features import FEATURE_NAMES, HISTORY_DAYS, latest_features
from components.deploy.server import parse_history
from tests.components.transform.outputs import run_transform


@pytest.fixture(scope="module")
def shard_rows(tmp_path_factory, bitcoin_csv):
    out = tmp_path_factory.mktemp("skew")
    run_transform(str(bitcoin_csv), str(out), coins="bitcoin")
    frames = [
        pd.read_csv(p, float_precision="round_trip")
        for p in sorted(out.glob("*-*.csv"))
        if p.name.split("-")[0] in ("train", "eval", "test")
    ]
    return pd.concat(frames).set_index("date").sort_index()


@pytest.fixture(scope="module")
def raw_history(bitcoin_csv):
    """The raw rows as a client would send them to the server (JSON-ready dicts)."""
    with open(bitcoin_csv, newline="") as f:
        rows = [
            {
                "date": r["date"],
                "open": float(r["open"]),
                "high": float(r["high"]),
                "low": float(r["low"]),
                "close": float(r["close"]),
                "volume": float(r["volume"]),
            }
            for r in csv.DictReader(f)
        ]
    return sorted(rows, key=lambda r: r["date"])


def test_server_features_equal_transform_features(shard_rows, raw_history):
    dates = [r["date"] for r in raw_history]
    # Every 20th row of the shards, across train, eval and test, plus the last one.
    sample = list(shard_rows.index[::20]) + [shard_rows.index[-1]]
    assert len(sample) > 50
    for day in sample:
        end = dates.index(day) + 1
        body = {"history": raw_history[max(0, end - HISTORY_DAYS - 5) : end]}
        served = latest_features(parse_history(body))
        stored = shard_rows.loc[day]
        for name in FEATURE_NAMES:
            assert served[name] == stored[name], (
                f"{day} {name}: server {served[name]!r} vs transform {stored[name]!r}"
            )
