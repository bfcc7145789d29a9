"""run_transform (through the CLI) on the full shared file, checked independently with pandas."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common.features import FEATURE_NAMES, TARGET_NAME
from components.transform.__main__ import main
from tests.components.transform.outputs import run_transform

pytestmark = pytest.mark.slow
STAT_COLUMNS = [*FEATURE_NAMES, TARGET_NAME]


@pytest.fixture(scope="module")
def full_run(crypto_csv: Path, tmp_path_factory) -> dict:
    """One CLI run with ``--coins all`` over the whole file, shared by this module."""
    out = tmp_path_factory.mktemp("full")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main([str(crypto_csv), "--output-dir", str(out), "--coins", "all", "-q"])
    assert code == 0
    shards = {
        split: pd.read_csv(out / f"{split}-00000-of-00001.csv", dtype={"date": str})
        for split in ("train", "eval", "test")
    }
    return {
        "out": out,
        "stdout": printed.getvalue(),
        "shards": shards,
        "stats": json.loads((out / "stats.json").read_text()),
    }


@pytest.fixture(scope="module")
def raw(crypto_csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(crypto_csv)
    frame["day"] = pd.to_datetime(frame["date"], format="%d/%m/%Y")
    return frame


def test_every_bitcoin_day_parses_without_rejections(full_run: dict) -> None:
    stats = full_run["stats"]
    assert stats["input_rows"] == stats["accepted_rows"] == 29_999
    assert stats["rejected_rows"] == 0
    assert stats["coins_in_input"]["bitcoin"] == 1_793
    btc = stats["coins"]["bitcoin"]
    assert (btc["bars"], btc["duplicates"], btc["gaps"]) == (1_793, 0, 0)
    # 1,793 days − 30 of warm-up − the last (unknown next day) = 1,762 examples, sized
    # 1,233 / 264 / 265; the last train day and the last eval day are purged.
    assert (btc["train"], btc["eval"], btc["test"]) == (1_232, 263, 265)
    assert (full_run["out"] / "rejected.csv").read_text() == "line,reason,raw\n"


def test_cli_reports_counts_for_all_44_coins(full_run: dict, raw: pd.DataFrame) -> None:
    stats = full_run["stats"]
    assert len(stats["coins"]) == 44
    assert stats["coins_in_input"] == raw.groupby("slug").size().to_dict()
    table = full_run["stdout"].splitlines()
    for coin, counts in stats["coins"].items():
        row = next(r for r in table if r.split()[0] == coin)
        assert row.split()[1:] == [
            str(counts[k]) for k in ("bars", "train", "eval", "test", "duplicates", "gaps")
        ]
    assert "total (44 coins)" in full_run["stdout"]
    # A coin too short for one example (ontology, 18 days) is reported with zero rows.
    assert stats["coins"]["ontology"] == {
        "train": 0,
        "eval": 0,
        "test": 0,
        "duplicates": 0,
        "gaps": 0,
        "bars": 18,
        "duplicate_lines": [],
    }


def test_gaps_match_an_independent_count(full_run: dict, raw: pd.DataFrame) -> None:
    expected = {
        slug: int((g["day"].sort_values().diff().dt.days > 1).sum())
        for slug, g in raw.groupby("slug")
    }
    assert {c: v["gaps"] for c, v in full_run["stats"]["coins"].items()} == expected
    assert sum(expected.values()) == 10


def test_shards_follow_the_contract(full_run: dict) -> None:
    for split, frame in full_run["shards"].items():
        assert list(frame.columns) == ["coin", "date", "close", *FEATURE_NAMES, TARGET_NAME]
        assert frame[STAT_COLUMNS].notna().all().all(), split
        assert frame["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
        assert list(frame.itertuples(index=False, name=None)) == sorted(
            frame.itertuples(index=False, name=None), key=lambda r: (r[0], r[1])
        )
        assert len(frame) == full_run["stats"]["splits"][split]["rows"]


def test_no_split_leaks_future_dates(full_run: dict) -> None:
    shards = full_run["shards"]
    checked = 0
    for coin in full_run["stats"]["coins"]:
        spans = [
            shards[s].loc[shards[s]["coin"] == coin, "date"] for s in ("train", "eval", "test")
        ]
        spans = [d for d in spans if len(d)]
        for earlier, later in zip(spans, spans[1:], strict=False):
            # Not even the target day (date + 1) of an earlier split reaches the later one.
            target_day = pd.Timestamp(earlier.max()) + pd.Timedelta(days=1)
            assert target_day < pd.Timestamp(later.min()), coin
            checked += 1
    assert checked >= 2 * 40


def test_statistics_come_from_the_train_shard_only(full_run: dict) -> None:
    stats, shards = full_run["stats"], full_run["shards"]
    train = shards["train"][STAT_COLUMNS]
    np.testing.assert_allclose(
        [stats["mean"][c] for c in STAT_COLUMNS], train.mean(), rtol=1e-9, atol=1e-15
    )
    np.testing.assert_allclose(
        [stats["std"][c] for c in STAT_COLUMNS], train.std(ddof=0), rtol=1e-9
    )
    everything = pd.concat(shards.values())[STAT_COLUMNS]
    assert len(everything) > len(train)
    # Fitting on all rows would give different numbers: the test is not vacuous.
    differs = ~np.isclose(everything.mean(), train.mean(), rtol=1e-3)
    assert differs.sum() >= 10
    assert not np.isclose(everything[TARGET_NAME].std(ddof=0), stats["std"][TARGET_NAME], rtol=1e-3)


def test_bitcoin_features_equal_an_independent_pandas_computation(
    full_run: dict, raw: pd.DataFrame
) -> None:
    btc = raw[raw["slug"] == "bitcoin"].sort_values("day").reset_index(drop=True)
    ret = np.log(btc["close"]).diff()
    expected = pd.DataFrame({"date": btc["day"].dt.strftime("%Y-%m-%d"), "close": btc["close"]})
    for k in range(1, 8):
        expected[f"ret_lag_{k}"] = ret.shift(k - 1)
    for window in (7, 30):
        expected[f"ret_mean_{window}"] = ret.rolling(window).mean()
        expected[f"ret_std_{window}"] = ret.rolling(window).std(ddof=0)
    expected["log_hl_range"] = np.log(btc["high"] / btc["low"])
    expected["log_volume_change"] = np.log1p(btc["volume"]).diff()
    weekday = btc["day"].dt.weekday
    expected["dow_sin"] = np.sin(2 * np.pi * weekday / 7)
    expected["dow_cos"] = np.cos(2 * np.pi * weekday / 7)
    log_range = np.log(btc["high"] / btc["low"])
    log_volume = np.log1p(btc["volume"])
    expected["abs_ret_lag_1"] = ret.abs()
    for window in (7, 30):
        expected[f"abs_ret_mean_{window}"] = ret.abs().rolling(window).mean()
        expected[f"log_hl_range_mean_{window}"] = log_range.rolling(window).mean()
    expected["sq_ret_mean_7"] = (ret**2).rolling(7).mean()
    expected["log_volume_rel_30"] = log_volume - log_volume.rolling(30).mean()
    expected[TARGET_NAME] = ret.shift(-1)
    expected = expected.iloc[30:-1].reset_index(drop=True)
    # Purge: drop the last row of train (first 70%) and of eval (the next 15%).
    n = len(expected)
    purged = [int(n * 0.7) - 1, int(n * 0.85) - 1]
    assert purged == [1_232, 1_496]
    expected = expected.drop(index=purged).reset_index(drop=True)

    got = pd.concat(full_run["shards"].values())
    got = got[got["coin"] == "bitcoin"].sort_values("date").reset_index(drop=True)
    assert list(got["date"]) == list(expected["date"])
    for column in ["close", *STAT_COLUMNS]:
        np.testing.assert_allclose(
            got[column], expected[column], rtol=1e-7, atol=1e-12, err_msg=column
        )


BAD_LINES = {
    "non_positive_price": "bitcoin,BTC,Bitcoin,1/1/2019,1,0,10,9,9.5,100,1,0.5,1",
    "high_below_low": "bitcoin,BTC,Bitcoin,2/1/2019,1,9.5,9,10,9.5,100,1,0.5,1",
    "close_outside_range": "bitcoin,BTC,Bitcoin,3/1/2019,1,9.5,10,9,12,100,1,0.5,1",
    "open_outside_range": "bitcoin,BTC,Bitcoin,4/1/2019,1,5,10,9,9.5,100,1,0.5,1",
    "negative_volume": "bitcoin,BTC,Bitcoin,5/1/2019,1,9.5,10,9,9.5,-1,1,0.5,1",
    "bad_date": "bitcoin,BTC,Bitcoin,32/1/2019,1,9.5,10,9,9.5,100,1,0.5,1",
    "bad_number": "bitcoin,BTC,Bitcoin,6/1/2019,1,9.5,ten,9,9.5,100,1,0.5,1",
    "missing_field": "bitcoin,BTC,Bitcoin,7/1/2019,1,9.5,10,,9.5,100,1,0.5,1",
    "extra_fields": "bitcoin,BTC,Bitcoin,8/1/2019,1,9.5,10,9,9.5,100,1,0.5,1,1",
    "malformed_csv": 'bitcoin,BTC,"Bitcoin,9/1/2019,1,9.5,10,9,9.5,100,1,0.5,1',
}


def test_injected_bad_rows_are_rejected_and_nothing_is_lost(
    crypto_csv: Path, tmp_path: Path
) -> None:
    lines = crypto_csv.read_text().splitlines()
    expected: dict[int, str] = {}
    for offset, (code, bad) in enumerate(BAD_LINES.items()):
        at = 2 + offset * 3_000  # spread through the file, the first right after the header
        lines.insert(at, bad)
        expected = {(n + 1 if n > at else n): c for n, c in expected.items()}
        expected[at + 1] = code
    lines.insert(10_000, "")  # blank lines: skipped, neither data nor rejections
    lines.append("   ")
    expected = {(n + 1 if n > 10_000 else n): c for n, c in expected.items()}
    # A valid line with quoted fields (a comma inside a name) for a new coin is accepted.
    lines.append('quoted-coin,QC,"Quoted, Coin",1/1/2019,1,"9.5",10,9,9.5,1.5E+3,1,0.5,1')
    src = tmp_path / "injected.csv"
    src.write_text("\n".join(lines))

    summary = run_transform(str(src), str(tmp_path / "out"), coins="bitcoin")
    data_rows = sum(1 for text in lines[1:] if text.strip())
    assert summary.input_rows == data_rows == 29_999 + len(BAD_LINES) + 1
    assert summary.accepted_rows + summary.rejected_rows == summary.input_rows
    assert summary.accepted_rows == 29_999 + 1
    assert summary.blank_lines == 2
    rejected = pd.read_csv(tmp_path / "out" / "rejected.csv", keep_default_na=False)
    assert (
        dict(zip(rejected["line"], rejected["reason"].str.split(":").str[0], strict=True))
        == expected
    )
    for _, row in rejected.iterrows():
        assert lines[row["line"] - 1] == row["raw"]
    assert summary.rejected_reasons == dict.fromkeys(BAD_LINES, 1)
    assert summary.coins["bitcoin"]["bars"] == 1_793  # no bad 2019 row slipped into bitcoin
