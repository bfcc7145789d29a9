"""run_transform on small hand-made files: features by hand, gaps, duplicates, failures."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import pytest

from components.common.schema import SchemaError
from components.transform.transform import RejectedRowsError, TransformError, run_transform
from tests.components.transform.synthetic import HEADER, MONDAY, line, series, walk, write_csv

LN11 = math.log(1.1)
DAY = dt.timedelta(days=1)


def read_rows(out: Path, split: str = "*") -> list[dict[str, str]]:
    """Every shard row of ``split`` (all splits by default), with its split name added."""
    rows = []
    for shard in sorted(out.glob(f"{split}-*-of-*.csv")):
        with shard.open(newline="") as handle:
            rows.extend({**r, "split": shard.name.split("-")[0]} for r in csv.DictReader(handle))
    return rows


def test_features_match_a_hand_computed_sample(tmp_path: Path) -> None:
    # 30 flat days at 100, then +10%, +10%, flat. Days 30 and 31 have the 31 bars of
    # history a row needs; day 32 is the last day (no target) and is not written.
    closes = [100.0] * 30 + [110.0, 121.0, 121.0]
    volumes = [1000.0 * (t + 1) for t in range(33)]
    src = write_csv(tmp_path / "in.csv", series("handmade", closes, volumes=volumes))
    run_transform(str(src), str(tmp_path / "out"), coins="handmade")
    rows = {r["date"]: r for r in read_rows(tmp_path / "out")}
    day30, day31 = (MONDAY + 30 * DAY).isoformat(), (MONDAY + 31 * DAY).isoformat()
    assert sorted(rows) == [day30, day31]
    assert (MONDAY + 30 * DAY).weekday() == 2  # a Wednesday

    expected = {
        day30: {
            "close": 110.0, "ret_lag_1": LN11, **{f"ret_lag_{k}": 0.0 for k in range(2, 8)},
            # six zero returns and one ln 1.1: mean ln1.1/7, variance ln²1.1·(1/7 − 1/49)
            "ret_mean_7": LN11 / 7, "ret_std_7": LN11 * math.sqrt(6) / 7,
            "ret_mean_30": LN11 / 30, "ret_std_30": LN11 * math.sqrt(29) / 30,
            "log_hl_range": math.log(1.02 / 0.98),
            "log_volume_change": math.log(31001 / 30001),
            "dow_sin": math.sin(4 * math.pi / 7), "dow_cos": math.cos(4 * math.pi / 7),
            "target": LN11,
        },
        day31: {
            "close": 121.0, "ret_lag_1": LN11, "ret_lag_2": LN11,
            **{f"ret_lag_{k}": 0.0 for k in range(3, 8)},
            "ret_mean_7": 2 * LN11 / 7, "ret_std_7": LN11 * math.sqrt(10) / 7,
            "ret_mean_30": LN11 / 15, "ret_std_30": LN11 * math.sqrt(56) / 30,
            "log_hl_range": math.log(1.02 / 0.98),
            "log_volume_change": math.log(32001 / 31001),
            "dow_sin": math.sin(6 * math.pi / 7), "dow_cos": math.cos(6 * math.pi / 7),
            "target": 0.0,
        },
    }
    for date, values in expected.items():
        assert rows[date]["coin"] == "handmade"
        for name, value in values.items():
            assert float(rows[date][name]) == pytest.approx(value, rel=1e-12, abs=1e-15), (date, name)


def test_a_gap_restarts_the_warm_up(tmp_path: Path) -> None:
    second_start = MONDAY + 43 * DAY  # days 40, 41, 42 are missing
    lines = series("gappy", walk(40)) + series("gappy", walk(40, 50.0), start=second_start)
    src = write_csv(tmp_path / "in.csv", lines)
    summary = run_transform(str(src), str(tmp_path / "out"), coins="gappy")
    dates = sorted(r["date"] for r in read_rows(tmp_path / "out"))
    # Each 40-day run yields days 30..38: 30 days of warm-up, and day 39 has no known next day.
    expected = [(start + i * DAY).isoformat() for start in (MONDAY, second_start) for i in range(30, 39)]
    assert dates == expected
    assert summary.coins["gappy"]["gaps"] == 1
    assert summary.coins["gappy"]["bars"] == 80


def test_duplicate_dates_are_dropped_counted_and_the_first_line_kept(tmp_path: Path) -> None:
    lines = series("dupes", walk(40))
    original_32 = float(lines[32].split(",")[8])
    lines.insert(0, line("dupes", MONDAY + 35 * DAY, 555.0))  # first in the file: kept
    lines.append(line("dupes", MONDAY + 32 * DAY, 777.0))     # after the original: dropped
    lines.append(line("dupes", MONDAY + 35 * DAY, 666.0))     # dropped
    src = write_csv(tmp_path / "in.csv", lines)
    summary = run_transform(str(src), str(tmp_path / "out"), coins="dupes", max_rejected_fraction=0)
    closes = {r["date"]: float(r["close"]) for r in read_rows(tmp_path / "out")}
    assert closes[(MONDAY + 32 * DAY).isoformat()] == original_32
    assert closes[(MONDAY + 35 * DAY).isoformat()] == 555.0
    assert summary.coins["dupes"]["duplicates"] == 3
    assert summary.duplicates == 3
    assert summary.accepted_rows == 43 and summary.rejected_rows == 0


def test_over_threshold_fails_clearly_and_the_rejected_rows_are_written(tmp_path: Path) -> None:
    lines = series("coin", walk(40)) + [
        line("coin", MONDAY + 50 * DAY, -1.0),
        line("coin", MONDAY + 51 * DAY, 10.0, high=5.0, low=6.0),
        line("coin", MONDAY + 52 * DAY, 10.0, high=5.0, low=6.0),
        "coin,COI,Coin,2021-13-45,1,1,1,1,1,1,1,1,1",
        "coin,COI,Coin",
    ]
    src = write_csv(tmp_path / "in.csv", lines)
    out = tmp_path / "out"
    with pytest.raises(RejectedRowsError) as caught:
        run_transform(str(src), str(out), coins="coin")
    message = str(caught.value)
    assert "5 of 45 input rows rejected (11.11%)" in message
    assert "more than the allowed 5.00%" in message
    assert "high_below_low (2)" in message and "bad_date (1)" in message
    assert str(out / "rejected.csv") in message
    with (out / "rejected.csv").open(newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in rejected] == [42, 43, 44, 45, 46]
    assert rejected[0]["reason"].startswith("non_positive_price")
    assert rejected[4]["raw"] == "coin,COI,Coin"
    # Nothing is lost: the accepted rows were transformed and counted too.
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["accepted_rows"], stats["rejected_rows"], stats["input_rows"]) == (40, 5, 45)
    assert len(read_rows(out, "train")) > 0
    # The same data passes with a looser threshold.
    assert run_transform(str(src), str(out), coins="coin", max_rejected_fraction=0.2).rejected_rows == 5


def test_coins_filter_is_case_insensitive_and_all_keeps_every_coin(tmp_path: Path) -> None:
    lines = series("AAA", walk(40)) + series("bbb", walk(40)) + series("ccc", walk(40))
    src = write_csv(tmp_path / "in.csv", lines)
    one = run_transform(str(src), str(tmp_path / "one"), coins="aaa")
    assert set(one.coins) == {"aaa"}
    assert {r["coin"] for r in read_rows(tmp_path / "one")} == {"aaa"}
    two = run_transform(str(src), str(tmp_path / "two"), coins=" AAA , Bbb")
    assert set(two.coins) == {"aaa", "bbb"}
    every = run_transform(str(src), str(tmp_path / "all"), coins="all")
    assert set(every.coins) == {"aaa", "bbb", "ccc"}
    assert every.accepted_rows == 120


def test_shards_partition_the_rows_by_coin(tmp_path: Path) -> None:
    lines = [ln for coin in ("a1", "b2", "c3", "d4", "e5") for ln in series(coin, walk(40))]
    src = write_csv(tmp_path / "in.csv", lines)
    run_transform(str(src), str(tmp_path / "one"), coins="all")
    run_transform(str(src), str(tmp_path / "four"), coins="all", num_shards=4)
    for split in ("train", "eval", "test"):
        shards = sorted((tmp_path / "four").glob(f"{split}-*.csv"))
        assert [s.name for s in shards] == [f"{split}-{i:05d}-of-00004.csv" for i in range(4)]
    key = lambda r: (r["split"], r["coin"], r["date"])  # noqa: E731
    assert sorted(read_rows(tmp_path / "four"), key=key) == sorted(read_rows(tmp_path / "one"), key=key)


def test_outputs_of_an_earlier_run_are_replaced_and_other_files_kept(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)))
    out = tmp_path / "out"
    run_transform(str(src), str(out), coins="x", num_shards=3)
    (out / "notes.txt").write_text("mine")
    run_transform(str(src), str(out), coins="x")
    assert sorted(p.name for p in out.iterdir()) == [
        "eval-00000-of-00001.csv", "notes.txt", "rejected.csv", "stats.json",
        "test-00000-of-00001.csv", "train-00000-of-00001.csv"]


def test_column_mapping_for_a_differently_named_file(tmp_path: Path) -> None:
    header = "Date,Open,High,Low,Close,Volume,Name,Symbol"
    lines = [f"{(MONDAY + i * DAY).isoformat()},{c},{c * 1.01},{c * 0.99},{c},5E+3,Foo,FOO"
             for i, c in enumerate(walk(40))]
    src = write_csv(tmp_path / "in.csv", lines, header=header)
    summary = run_transform(str(src), str(tmp_path / "out"), coins="foo",
                            column_mapping='{"date": "Date", "slug": "Name"}')
    assert summary.coins["foo"]["bars"] == 40
    with pytest.raises(SchemaError, match="missing columns: slug"):
        run_transform(str(src), str(tmp_path / "out2"), coins="foo")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"split": "0.7,0.2"}, "three fractions"),
    ({"split": (0.5, 0.3, 0.3)}, "sum to 1"),
    ({"coins": " , "}, "coins must be"),
    ({"max_rejected_fraction": 1.5}, "max_rejected_fraction"),
    ({"num_shards": 0}, "num_shards"),
    ({"runner": "prism"}, "unknown runner 'prism'"),
    ({"runner": "dataflow"}, "gs:// only"),
    ({"price_tolerance": -0.1}, "price_tolerance"),
])
def test_bad_parameters_fail_before_running(tmp_path: Path, kwargs: dict, match: str) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)))
    with pytest.raises(TransformError, match=match):
        run_transform(str(src), str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("content", "coins", "match"), [
    (None, "x", "input not found"),
    ("", "x", "is empty"),
    (HEADER + "\n", "x", "no data rows"),
    (HEADER + "\n" + "\n".join(series("x", walk(40))), "y,x", "coins not in the input: y. Available: x"),
    (HEADER + "\n" + "\n".join(series("x", walk(31))), "x", "no training rows"),
])
def test_unusable_input_is_a_clear_error(tmp_path: Path, content, coins: str, match: str) -> None:
    src = tmp_path / "in.csv"
    if content is not None:
        src.write_text(content)
    with pytest.raises(TransformError, match=match):
        run_transform(str(src), str(tmp_path / "out"), coins=coins)
