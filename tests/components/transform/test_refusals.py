"""The transform refuses what it cannot model: each case is rejected with its reason code,
accepted + rejected = input rows, and a failed run leaves nothing a later step accepts."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest

from components.common.results import ParameterError
from components.common.schema import SchemaError
from components.train import DataContractError, load_stats
from components.transform import TransformError, TransformParameterError
from components.transform import series as series_module
from tests.components.transform.outputs import run_transform
from tests.components.transform.synthetic import MONDAY, line, series, walk, write_csv

DAY = dt.timedelta(days=1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _rejected(out: Path) -> list[dict[str, str]]:
    with (out / "rejected.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _balanced(result, input_rows: int) -> None:
    assert result.input_rows == input_rows
    assert result.accepted_rows + result.rejected_rows == input_rows


def _shard_dates(out: Path) -> set[str]:
    dates = set()
    for shard in out.glob("*-of-*.csv"):
        with shard.open(newline="") as handle:
            dates |= {row["date"] for row in csv.DictReader(handle)}
    return dates


def test_implausible_range_is_rejected_and_the_limit_is_a_parameter(tmp_path):
    lines = series("coin", walk(60))
    lines[45] = line("coin", MONDAY + 45 * DAY, 100.0, high=100.0 * 1e4, low=0.01)  # 1e8 range
    src = write_csv(tmp_path / "in.csv", lines)
    result = run_transform(str(src), str(tmp_path / "out"), coins="coin", max_rejected_fraction=1)
    _balanced(result, 60)
    assert result.rejected_reasons == {"implausible_range": 1}
    (row,) = _rejected(tmp_path / "out")
    assert int(row["line"]) == 47 and row["reason"].startswith(
        "implausible_range: high/low = 1e+08"
    )
    # A looser limit accepts it.
    loose = run_transform(str(src), str(tmp_path / "loose"), coins="coin", max_intraday_range=1e9)
    assert loose.rejected_rows == 0


def test_implausible_move_is_rejected_against_the_previous_accepted_close(tmp_path):
    closes = walk(70)
    closes[50] = closes[49] * 1e7  # a spike of seven orders of magnitude, one day
    src = write_csv(tmp_path / "in.csv", series("coin", closes))
    result = run_transform(str(src), str(tmp_path / "out"), coins="coin", max_rejected_fraction=1)
    _balanced(result, 70)
    # Only the spike: the next day is compared with the last accepted close, not the spike.
    assert result.rejected_reasons == {"implausible_move": 1}
    (row,) = _rejected(tmp_path / "out")
    assert int(row["line"]) == 52 and row["reason"].startswith("implausible_move: close=")
    assert row["raw"].startswith(f"coin,{(MONDAY + 50 * DAY).isoformat()},")
    assert (MONDAY + 50 * DAY).isoformat() not in _shard_dates(tmp_path / "out")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert all(math.isfinite(v) for v in stats["std"].values())
    assert stats["coins_in_input"] == {"coin": 69}
    loose = run_transform(str(src), str(tmp_path / "loose"), coins="coin", max_daily_move=1e8)
    assert loose.rejected_rows == 0


def test_non_finite_features_or_target_reject_the_row(tmp_path):
    # With the move check off, a close of 1e-300 after 1e300 makes the return infinite.
    closes = walk(70)
    closes[60] = 1e300
    closes[61] = 1e-300
    src = write_csv(tmp_path / "in.csv", series("coin", closes))
    out = tmp_path / "out"
    result = run_transform(
        str(src),
        str(out),
        coins="coin",
        max_rejected_fraction=1,
        max_daily_move=math.inf,
        max_intraday_range=math.inf,
    )
    _balanced(result, 70)
    assert set(result.rejected_reasons) == {"non_finite_feature"}
    assert all("not finite" in r["reason"] for r in _rejected(out))
    stats = json.loads((out / "stats.json").read_text())
    assert all(math.isfinite(v) for v in [*stats["mean"].values(), *stats["std"].values()])
    for shard in out.glob("*-of-*.csv"):
        with shard.open(newline="") as handle:
            for row in csv.DictReader(handle):
                assert all(math.isfinite(float(row[k])) for k in row if k not in ("coin", "date"))


def test_non_finite_values_from_the_feature_code_are_caught(tmp_path, monkeypatch):
    """Whatever makes a feature non-finite, the row is rejected (here: the feature code
    itself returns inf for one day)."""
    real = series_module.compute_features
    poisoned = (MONDAY + 40 * DAY).toordinal() - 719163  # days since 1970-01-01

    def compute_features(days, *columns):
        index, features, target = real(days, *columns)
        features = features.copy()
        features[np.asarray(days)[index] == poisoned, 0] = np.inf
        return index, features, target

    monkeypatch.setattr(series_module, "compute_features", compute_features)
    src = write_csv(tmp_path / "in.csv", series("coin", walk(80)))
    result = run_transform(str(src), str(tmp_path / "out"), coins="coin", max_rejected_fraction=1)
    _balanced(result, 80)
    assert result.rejected_reasons == {"non_finite_feature": 1}
    (row,) = _rejected(tmp_path / "out")
    assert row["reason"] == "non_finite_feature: ret_lag_1 not finite"
    assert (MONDAY + 40 * DAY).isoformat() not in _shard_dates(tmp_path / "out")


def test_dates_after_the_runs_date_are_rejected(tmp_path):
    lines = series("coin", walk(60))
    src = write_csv(tmp_path / "in.csv", lines)
    as_of = MONDAY + 54 * DAY  # the last 5 days lie after it
    result = run_transform(
        str(src), str(tmp_path / "out"), coins="coin", max_rejected_fraction=1, as_of=as_of
    )
    _balanced(result, 60)
    assert result.rejected_reasons == {"future_date": 5}
    assert _rejected(tmp_path / "out")[0]["reason"] == (
        f"future_date: {(MONDAY + 55 * DAY).isoformat()} is after the run's date "
        f"{as_of.isoformat()}"
    )
    # The default is today: 2021 is not in the future.
    assert run_transform(str(src), str(tmp_path / "today"), coins="coin").rejected_rows == 0
    with pytest.raises(TransformParameterError, match="as_of"):
        run_transform(str(src), str(tmp_path / "bad"), coins="coin", as_of="next tuesday")


def test_conflicting_duplicates_reject_every_line_of_the_date(tmp_path):
    lines = series("coin", walk(60))
    lines.append(line("coin", MONDAY + 20 * DAY, 777.0))  # day 20 again, other values
    lines.append(lines[30])  # day 30 again, the same values: dropped, counted
    src = write_csv(tmp_path / "in.csv", lines)
    out = tmp_path / "out"
    result = run_transform(str(src), str(out), coins="coin", max_rejected_fraction=1)
    _balanced(result, 62)
    assert result.rejected_reasons == {"conflicting_duplicate": 2}
    rows = _rejected(out)
    assert [int(r["line"]) for r in rows] == [22, 62]
    assert rows[0]["reason"] == (
        f"conflicting_duplicate: {(MONDAY + 20 * DAY).isoformat()} is also on line(s) 62 "
        "with other values"
    )
    assert (MONDAY + 20 * DAY).isoformat() not in _shard_dates(out)
    assert result.coins["coin"]["duplicates"] == 1
    assert result.coins["coin"]["duplicate_lines"] == [[63, 32]]


def test_column_mapping_must_be_one_to_one(tmp_path):
    src = write_csv(tmp_path / "in.csv", series("coin", walk(40)))
    with pytest.raises(ParameterError, match="close, open all map to column 'price'"):
        run_transform(
            str(src), str(tmp_path / "a"), column_mapping={"open": "Price", "close": "price"}
        )
    with pytest.raises(SchemaError, match="open, close would all be read from column 'open'"):
        run_transform(str(src), str(tmp_path / "b"), column_mapping={"close": "open"})


def _gappy(n_runs: int, run_days: int) -> list[str]:
    lines = []
    for k in range(n_runs):
        start = MONDAY + k * (run_days + 1) * DAY  # one missing day between runs
        lines += series("coin", walk(run_days), start=start)
    return lines


def test_gaps_that_leave_few_usable_rows_warn(tmp_path):
    # Runs of 50 days: 19 examples each, of the 50 a gap-free history would add.
    src = write_csv(tmp_path / "in.csv", _gappy(4, 50))
    out = tmp_path / "out"
    result = run_transform(str(src), str(out), coins="coin", warn_usable_fraction=0.5)
    _balanced(result, 200)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["low_usable_coins"] == {"coin": pytest.approx(76 / 169)}
    assert stats["warnings"] == result.warnings and len(result.warnings) == 1
    assert result.warnings[0].startswith("coin: gaps leave 45.0% of its rows usable")
    assert "warning: coin: gaps leave" in result.table()
    assert result.output_metadata()["stats"]["warnings"] == result.warnings
    quiet = run_transform(str(src), str(tmp_path / "q"), coins="coin", warn_usable_fraction=0.4)
    assert quiet.warnings == []
    assert "warnings" not in json.loads((tmp_path / "q" / "stats.json").read_text())


def test_gaps_that_leave_too_few_usable_rows_fail_and_invalidate_the_outputs(tmp_path):
    src = write_csv(tmp_path / "in.csv", _gappy(6, 35))  # 4 examples per 35-day run
    out = tmp_path / "out"
    with pytest.raises(TransformError, match="gaps leave too few usable rows: coin 13.4%"):
        run_transform(str(src), str(out), coins="coin")
    assert not list(out.glob("*-of-*.csv"))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["failed"].startswith("TransformError: gaps leave too few usable rows")
    assert stats["accepted_rows"] + stats["rejected_rows"] == stats["input_rows"] == 210
    with pytest.raises(DataContractError, match="did not succeed"):
        load_stats(out / "stats.json")


def test_a_run_that_crashes_leaves_no_valid_outputs(tmp_path, monkeypatch):
    good = write_csv(tmp_path / "in.csv", series("coin", walk(60)))
    out = tmp_path / "out"
    run_transform(str(good), str(out), coins="coin")
    assert list(out.glob("train-*.csv")) and "failed" not in json.loads(
        (out / "stats.json").read_text()
    )

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(series_module, "split_sizes", crash)
    with pytest.raises(Exception, match="worker lost"):
        run_transform(str(good), str(out), coins="coin")
    # The earlier run's shards and stats are gone; nothing is left to be taken as valid.
    assert not list(out.glob("*-of-*.csv"))
    assert not (out / "stats.json").exists()


def test_stats_written_by_the_pipeline_are_marked_until_the_run_checks_them(tmp_path):
    """A run killed after Beam wrote stats.json leaves it marked: train refuses it."""
    from components.transform import beam_ops

    written = {}
    real = beam_ops.write_stats

    def spy(path, stats):
        written.setdefault("first", dict(stats))
        real(path, stats)

    beam_ops.write_stats = spy
    try:
        src = write_csv(tmp_path / "in.csv", series("coin", walk(60)))
        run_transform(str(src), str(tmp_path / "out"), coins="coin")
    finally:
        beam_ops.write_stats = real
    assert written["first"]["failed"].startswith("incomplete")
    assert "failed" not in json.loads((tmp_path / "out" / "stats.json").read_text())


@pytest.mark.parametrize(
    "name, value",
    [
        ("max_daily_move", 1.0),
        ("max_intraday_range", float("nan")),
        ("warn_usable_fraction", 1.5),
        ("min_usable_fraction", -0.1),
    ],
)
def test_unusable_limits_are_parameter_errors(tmp_path, name, value):
    src = write_csv(tmp_path / "in.csv", series("coin", walk(40)))
    with pytest.raises(TransformParameterError, match=name):
        run_transform(str(src), str(tmp_path / "out"), coins="coin", **{name: value})
