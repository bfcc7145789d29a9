"""run_transform on small hand-made files: features by hand, gaps, duplicates, failures."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import pytest

from components.common.schema import SchemaError
from components.transform import RejectedRowsError, TransformError
from tests.components.transform.outputs import run_transform
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
    # 30 flat days at 100, then +10%, +10%, flat, and three more days. Days 30..34 have the
    # 31 bars of history a row needs and a known next day (day 35, the last, is not written).
    # Those 5 examples split 3 / 1 / 1; the purge drops day 32 (last train) and day 33 (the
    # only eval day), so days 30 and 31 stay in train and day 34 in test.
    closes = [100.0] * 30 + [110.0, 121.0, 121.0, 133.1, 121.0, 121.0]
    volumes = [1000.0 * (t + 1) for t in range(36)]
    src = write_csv(tmp_path / "in.csv", series("handmade", closes, volumes=volumes))
    run_transform(str(src), str(tmp_path / "out"), coins="handmade")
    rows = {r["date"]: r for r in read_rows(tmp_path / "out")}
    day30, day31 = (MONDAY + 30 * DAY).isoformat(), (MONDAY + 31 * DAY).isoformat()
    day34 = (MONDAY + 34 * DAY).isoformat()
    assert {d: r["split"] for d, r in rows.items()} == {
        day30: "train",
        day31: "train",
        day34: "test",
    }
    assert (MONDAY + 30 * DAY).weekday() == 2  # a Wednesday

    expected = {
        day30: {
            "close": 110.0,
            "ret_lag_1": LN11,
            **{f"ret_lag_{k}": 0.0 for k in range(2, 8)},
            # six zero returns and one ln 1.1: mean ln1.1/7, variance ln²1.1·(1/7 − 1/49)
            "ret_mean_7": LN11 / 7,
            "ret_std_7": LN11 * math.sqrt(6) / 7,
            "ret_mean_30": LN11 / 30,
            "ret_std_30": LN11 * math.sqrt(29) / 30,
            "log_hl_range": math.log(1.02 / 0.98),
            "log_volume_change": math.log(31001 / 30001),
            "dow_sin": math.sin(4 * math.pi / 7),
            "dow_cos": math.cos(4 * math.pi / 7),
            "target": LN11,
        },
        day31: {
            "close": 121.0,
            "ret_lag_1": LN11,
            "ret_lag_2": LN11,
            **{f"ret_lag_{k}": 0.0 for k in range(3, 8)},
            "ret_mean_7": 2 * LN11 / 7,
            "ret_std_7": LN11 * math.sqrt(10) / 7,
            "ret_mean_30": LN11 / 15,
            "ret_std_30": LN11 * math.sqrt(56) / 30,
            "log_hl_range": math.log(1.02 / 0.98),
            "log_volume_change": math.log(32001 / 31001),
            "dow_sin": math.sin(6 * math.pi / 7),
            "dow_cos": math.cos(6 * math.pi / 7),
            "target": 0.0,
        },
    }
    for date, values in expected.items():
        assert rows[date]["coin"] == "handmade"
        for name, value in values.items():
            assert float(rows[date][name]) == pytest.approx(value, rel=1e-12, abs=1e-15), (
                date,
                name,
            )


def test_a_gap_restarts_the_warm_up(tmp_path: Path) -> None:
    second_start = MONDAY + 43 * DAY  # days 40, 41, 42 are missing
    lines = series("gappy", walk(40)) + series("gappy", walk(40, 50.0), start=second_start)
    src = write_csv(tmp_path / "in.csv", lines)
    summary = run_transform(str(src), str(tmp_path / "out"), coins="gappy")
    dates = sorted(r["date"] for r in read_rows(tmp_path / "out"))
    # Each 40-day run yields days 30..38: 30 days of warm-up, and day 39 has no known next day.
    # The 18 examples split 12 / 3 / 3 (all in date order across the gap), so the purge drops
    # the second run's day 32 (last train) and day 35 (last eval).
    examples = [start + i * DAY for start in (MONDAY, second_start) for i in range(30, 39)]
    purged = {second_start + 32 * DAY, second_start + 35 * DAY}
    assert dates == [d.isoformat() for d in examples if d not in purged]
    counts = summary.coins["gappy"]
    assert (counts["train"], counts["eval"], counts["test"]) == (11, 2, 3)
    assert summary.coins["gappy"]["gaps"] == 1
    assert summary.coins["gappy"]["bars"] == 80


def test_duplicate_dates_are_dropped_counted_and_the_first_line_kept(tmp_path: Path) -> None:
    # Examples are days 30..38, split 6 / 1 / 2: days 35 and 36 are purged, the duplicated
    # days 32 and 34 stay in train.
    # Exact copies of a line (the same values): dropped, counted, the first line kept.
    # (Lines of a date with other values are rejected: test_conflicting_duplicates_...)
    lines = series("dupes", walk(40))
    original_32 = float(lines[32].split(",")[8])
    original_34 = float(lines[34].split(",")[8])
    lines.insert(0, lines[34])  # first in the file: kept
    lines.append(lines[33])  # day 32 again, after the original: dropped
    lines.append(lines[0])  # day 34 again: dropped
    src = write_csv(tmp_path / "in.csv", lines)
    summary = run_transform(str(src), str(tmp_path / "out"), coins="dupes", max_rejected_fraction=0)
    closes = {r["date"]: float(r["close"]) for r in read_rows(tmp_path / "out")}
    assert closes[(MONDAY + 32 * DAY).isoformat()] == original_32
    assert closes[(MONDAY + 34 * DAY).isoformat()] == original_34
    assert summary.coins["dupes"]["duplicates"] == 3
    assert summary.duplicates == 3
    # Nothing is dropped silently: stats.json names each dropped line (header = line 1,
    # so list index i is line i + 2) and the line that was kept for that date.
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["coins"]["dupes"]["duplicate_lines"] == [[43, 35], [37, 2], [44, 2]]
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
    # Nothing is lost: the accepted rows were counted too. But no later step may take the
    # outputs for valid: the shards are removed and stats.json is marked failed.
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["accepted_rows"], stats["rejected_rows"], stats["input_rows"]) == (40, 5, 45)
    assert stats["failed"].startswith("RejectedRowsError: 5 of 45 input rows rejected")
    assert read_rows(out) == [] and not list(out.glob("*-of-*.csv"))
    # The same data passes with a looser threshold.
    assert (
        run_transform(str(src), str(out), coins="coin", max_rejected_fraction=0.2).rejected_rows
        == 5
    )


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
    assert sorted(read_rows(tmp_path / "four"), key=key) == sorted(
        read_rows(tmp_path / "one"), key=key
    )


def test_outputs_of_an_earlier_run_are_replaced_and_other_files_kept(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)))
    out = tmp_path / "out"
    run_transform(str(src), str(out), coins="x", num_shards=3)
    (out / "notes.txt").write_text("mine")
    (out / ".parts-0123").mkdir()  # as a run killed before removing its part files leaves
    (out / ".parts-0123" / "part-1.csv").write_text("x,2021-01-01\n")
    run_transform(str(src), str(out), coins="x")
    assert sorted(p.name for p in out.iterdir()) == [
        "eval-00000-of-00001.csv",
        "notes.txt",
        "rejected.csv",
        "stats.json",
        "test-00000-of-00001.csv",
        "train-00000-of-00001.csv",
    ]


def test_column_mapping_for_a_differently_named_file(tmp_path: Path) -> None:
    header = "Date,Open,High,Low,Close,Volume,Name,Symbol"
    lines = [
        f"{(MONDAY + i * DAY).isoformat()},{c},{c * 1.01},{c * 0.99},{c},5E+3,Foo,FOO"
        for i, c in enumerate(walk(40))
    ]
    src = write_csv(tmp_path / "in.csv", lines, header=header)
    summary = run_transform(
        str(src),
        str(tmp_path / "out"),
        coins="foo",
        column_mapping='{"date": "Date", "slug": "Name"}',
    )
    assert summary.coins["foo"]["bars"] == 40
    with pytest.raises(SchemaError, match="missing columns: slug"):
        run_transform(str(src), str(tmp_path / "out2"), coins="foo")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "0.7,0.2"}, "three fractions"),
        ({"split": (0.5, 0.3, 0.3)}, "sum to 1"),
        ({"coins": " , "}, "coins must be"),
        ({"max_rejected_fraction": 1.5}, "max_rejected_fraction"),
        ({"num_shards": 0}, "num_shards"),
        ({"runner": "prism"}, "unknown runner 'prism'"),
        ({"runner": "dataflow"}, "gs:// only"),
        ({"price_tolerance": -0.1}, "price_tolerance"),
    ],
)
def test_bad_parameters_fail_before_running(tmp_path: Path, kwargs: dict, match: str) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)))
    with pytest.raises(TransformError, match=match):
        run_transform(str(src), str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "coins", "match"),
    [
        (None, "x", "input not found"),
        ("", "x", "is empty"),
        (HEADER + "\n", "x", "no data rows"),
        (
            HEADER + "\n" + "\n".join(series("x", walk(40))),
            "y,x",
            "coins not in the input: y. Available: x",
        ),
        (HEADER + "\n" + "\n".join(series("x", walk(31))), "x", "no training rows"),
        # 2 examples split 1 / 0 / 1: the only train row is purged at the train/test boundary.
        (HEADER + "\n" + "\n".join(series("x", walk(33))), "x", "no training rows"),
    ],
)
def test_unusable_input_is_a_clear_error(tmp_path: Path, content, coins: str, match: str) -> None:
    src = tmp_path / "in.csv"
    if content is not None:
        src.write_text(content)
    with pytest.raises(TransformError, match=match):
        run_transform(str(src), str(tmp_path / "out"), coins=coins)


def test_no_training_rows_message_names_the_split_the_purge_and_the_days(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(33)) + series("y", walk(20)))
    with pytest.raises(TransformError) as caught:
        run_transform(str(src), str(tmp_path / "out"), coins="all")
    message = str(caught.value)
    assert message.startswith(
        "no training rows with split 0.7,0.15,0.15: a coin needs at least 32 consecutive days"
    )
    assert "the last train day is purged" in message
    assert message.endswith("per-coin days: {'x': 33, 'y': 20}")
    # With every day in train there is no boundary, and the same coin trains.
    summary = run_transform(str(src), str(tmp_path / "out"), coins="all", split="1,0,0")
    assert summary.splits["train"]["rows"] == 2


@pytest.mark.parametrize(
    ("split", "counts"),
    [
        # aaa: 100 days → 69 examples (days 30..98) sized 48 / 10 / 11, purged days 77 and 87.
        # bbb: 45 days from day 5 → 14 examples (its days 30..43) sized 9 / 2 / 3, purged 38, 40.
        ("0.7,0.15,0.15", {"aaa": (47, 9, 11), "bbb": (8, 1, 3)}),
        ("1,0,0", {"aaa": (69, 0, 0), "bbb": (14, 0, 0)}),  # one split: nothing purged
    ],
)
def test_stats_and_summary_count_the_purged_rows(tmp_path: Path, split: str, counts: dict) -> None:
    bbb_start = MONDAY + 5 * DAY
    src = write_csv(
        tmp_path / "in.csv", series("aaa", walk(100)) + series("bbb", walk(45), bbb_start)
    )
    out = tmp_path / "out"
    summary = run_transform(str(src), str(out), coins="all", split=split)
    stats = json.loads((out / "stats.json").read_text())
    rows = read_rows(out)
    for coin, expected in counts.items():
        got = stats["coins"][coin]
        assert (got["train"], got["eval"], got["test"]) == expected, coin
        assert summary.coins[coin] == got
        in_shards = tuple(
            sum(1 for r in rows if r["coin"] == coin and r["split"] == s)
            for s in ("train", "eval", "test")
        )
        assert in_shards == expected, coin
    for i, s in enumerate(("train", "eval", "test")):
        assert (
            stats["splits"][s]["rows"]
            == summary.splits[s]["rows"]
            == sum(c[i] for c in counts.values())
        )
    assert stats["mean"] and stats["std"]
    if split == "1,0,0":
        return
    dates = {(r["coin"], r["date"]) for r in rows}
    for coin, start, purged in (("aaa", MONDAY, (77, 87)), ("bbb", bbb_start, (38, 40))):
        for day in purged:
            assert (coin, (start + day * DAY).isoformat()) not in dates
            # ... while the days either side of it are kept.
            assert (coin, (start + (day - 1) * DAY).isoformat()) in dates
            assert (coin, (start + (day + 1) * DAY).isoformat()) in dates
    # The split ranges come from the kept rows: aaa's train ends on day 76 (77 is purged),
    # bbb's eval, the earliest, starts on its day 39.
    assert stats["splits"]["train"]["end"] == (MONDAY + 76 * DAY).isoformat()
    assert stats["splits"]["eval"]["start"] == (bbb_start + 39 * DAY).isoformat()
