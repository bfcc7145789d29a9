"""The vectorised feature functions (components.common.features) on small series by hand."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from components.common import features
from components.common.features import (
    FEATURE_NAMES,
    HISTORY_COLUMNS,
    HISTORY_DAYS,
    TARGET_NAME,
    Bar,
    compute_features,
    epoch_days,
    feature_frame,
    latest_features,
)

LN11 = math.log(1.1)
MONDAY = dt.date(2021, 1, 4)


def _history(closes, start=MONDAY, days=None) -> pd.DataFrame:
    days = range(len(closes)) if days is None else days
    return pd.DataFrame(
        {
            "date": [start + dt.timedelta(days=d) for d in days],
            "open": closes,
            "high": [c * 1.02 for c in closes],
            "low": [c * 0.98 for c in closes],
            "close": closes,
            "volume": [1000.0 * (t + 1) for t in range(len(closes))],
        }
    )[list(HISTORY_COLUMNS)]


def test_features_of_a_hand_computed_series() -> None:
    # 30 flat days at 100, then +10%, +10%, flat: days 30..32 have full history.
    frame = feature_frame(_history([100.0] * 30 + [110.0, 121.0, 121.0]))
    assert list(frame.columns) == ["date", "close", *FEATURE_NAMES, TARGET_NAME]
    assert [d.date() for d in frame["date"]] == [
        MONDAY + dt.timedelta(days=d) for d in (30, 31, 32)
    ]
    day30, day31, day32 = (frame.iloc[i] for i in range(3))
    expected30 = {
        "close": 110.0,
        "ret_lag_1": LN11,
        **{f"ret_lag_{k}": 0.0 for k in range(2, 8)},
        "ret_mean_7": LN11 / 7,
        "ret_std_7": LN11 * math.sqrt(6) / 7,
        "ret_mean_30": LN11 / 30,
        "ret_std_30": LN11 * math.sqrt(29) / 30,
        "log_hl_range": math.log(1.02 / 0.98),
        "log_volume_change": math.log(31001 / 30001),
        "dow_sin": math.sin(4 * math.pi / 7),  # a Wednesday
        "dow_cos": math.cos(4 * math.pi / 7),
        TARGET_NAME: LN11,
    }
    for name, value in expected30.items():
        assert day30[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert day31["ret_lag_2"] == day30["ret_lag_1"]
    assert day31["ret_std_7"] == pytest.approx(LN11 * math.sqrt(10) / 7, rel=1e-12)
    assert day31[TARGET_NAME] == 0.0
    assert day32["ret_lag_1"] == 0.0 and day32["ret_mean_7"] == pytest.approx(2 * LN11 / 7)
    assert math.isnan(day32[TARGET_NAME])  # the last day: tomorrow is unknown


def test_a_gap_restarts_the_warm_up_and_ends_a_run() -> None:
    closes = [100.0 + (i % 5) for i in range(70)]
    days = [*range(35), *range(38, 73)]  # days 35..37 missing
    history = _history(closes, days=days)
    rows, values, target = compute_features(
        epoch_days(list(history["date"])),
        history["high"].to_numpy(),
        history["low"].to_numpy(),
        history["close"].to_numpy(),
        history["volume"].to_numpy(),
    )
    # Rows 30..34 end the first run's history; the second run starts at row 35.
    assert rows.tolist() == [*range(30, 35), *range(65, 70)]
    assert values.shape == (10, len(FEATURE_NAMES))
    assert np.isnan(target[[4, 9]]).all() and not np.isnan(np.delete(target, [4, 9])).any()
    assert target[0] == math.log(closes[31] / closes[30])


def test_too_short_history_gives_no_rows() -> None:
    frame = feature_frame(_history([100.0] * (HISTORY_DAYS - 1)))
    assert len(frame) == 0 and list(frame.columns)[2:-1] == list(FEATURE_NAMES)


def test_latest_features_is_the_last_row_of_the_frame() -> None:
    closes = [100.0 * math.exp(0.01 * math.sin(i)) for i in range(45)]
    history = _history(closes)
    bars = [Bar(r.date, r.open, r.high, r.low, r.close, r.volume) for r in history.itertuples()]
    frame = feature_frame(history)
    assert latest_features(bars) == {n: frame.iloc[-1][n] for n in FEATURE_NAMES}
    assert latest_features(bars[:-3]) == {n: frame.iloc[-4][n] for n in FEATURE_NAMES}
    gapped = bars[:20] + [
        Bar(b.date + dt.timedelta(days=1), *list(vars(b).values())[1:]) for b in bars[20:]
    ]
    with pytest.raises(ValueError, match="31 consecutive daily bars ending at the row; got 25"):
        latest_features(gapped)
    with pytest.raises(ValueError, match="got 0"):
        latest_features([])


def test_window_sums_are_correctly_rounded_like_fsum() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(size=(2000, 30)) * 10.0 ** rng.integers(-8, 3, size=(2000, 1))
    # Heavy cancellation: each row's values cancel to (almost) nothing.
    cancel = np.concatenate([base[:, :15], -base[:, :15] * (1 + 1e-15)], axis=1)
    for matrix in (base, cancel, np.zeros((3, 7))):
        got = features._sum(matrix)
        want = [math.fsum(row) for row in matrix.tolist()]
        assert got.tolist() == want


def test_squares_are_pythons_squares() -> None:
    x = np.random.default_rng(5).normal(size=(5000, 7)) * 0.05
    assert features._square(x).ravel().tolist() == [v**2 for v in x.ravel().tolist()]


def test_volatility_features_of_the_hand_computed_series() -> None:
    """The 7 volatility features on the series above (30 flat days at 100, then +10%,
    +10%, flat; high/low 2% around the close; volume 1000 · (day + 1))."""
    frame = feature_frame(_history([100.0] * 30 + [110.0, 121.0, 121.0]))
    day30, day31, day32 = (frame.iloc[i] for i in range(3))
    log_range = math.log(1.02 / 0.98)
    # Volumes of days 1..30 are 2000..31000: the 30-day mean of log(1 + volume) ends at t.
    mean_log_volume = math.fsum(math.log1p(1000.0 * (t + 1)) for t in range(1, 31)) / 30
    expected30 = {
        "abs_ret_lag_1": LN11,
        "abs_ret_mean_7": LN11 / 7,
        "abs_ret_mean_30": LN11 / 30,
        "sq_ret_mean_7": LN11**2 / 7,
        "log_hl_range_mean_7": log_range,
        "log_hl_range_mean_30": log_range,
        "log_volume_rel_30": math.log1p(31000.0) - mean_log_volume,
    }
    for name, value in expected30.items():
        assert day30[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert day31["abs_ret_mean_7"] == pytest.approx(2 * LN11 / 7, rel=1e-12)
    assert day31["abs_ret_mean_30"] == pytest.approx(2 * LN11 / 30, rel=1e-12)
    assert day31["sq_ret_mean_7"] == pytest.approx(2 * LN11**2 / 7, rel=1e-12)
    assert day32["abs_ret_lag_1"] == 0.0
    assert day32["abs_ret_mean_7"] == pytest.approx(2 * LN11 / 7, rel=1e-12)
    assert list(FEATURE_NAMES[-7:]) == list(expected30)


def test_volatility_features_are_their_definitions_to_the_bit() -> None:
    """On a random series with a calendar gap, each volatility feature of day ``t`` is its
    definition over days ``t-6 .. t`` or ``t-29 .. t``, computed one row at a time with
    Python floats (``math.log``, ``math.fsum``, ``x ** 2``): equal to the last bit."""
    rng = np.random.default_rng(3)
    n = 90
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.04, n)))
    high = close * (1 + rng.uniform(0.001, 0.08, n))
    low = close * (1 - rng.uniform(0.001, 0.08, n))
    volume = rng.uniform(1e3, 1e9, n)
    days = np.array([*range(40), *range(45, 95)])  # a gap after day 39
    rows, values, _ = compute_features(days, high, low, close, volume)
    assert rows.tolist() == [*range(30, 40), *range(70, 90)]
    c, h, lo, v = close.tolist(), high.tolist(), low.tolist(), volume.tolist()
    column = {name: k for k, name in enumerate(FEATURE_NAMES)}
    for k, t in enumerate(rows.tolist()):
        r = [math.log(c[t - j] / c[t - j - 1]) for j in range(30)]  # r[j]: into day t - j
        rng_ = [math.log(h[t - j] / lo[t - j]) for j in range(30)]
        want = {
            "abs_ret_lag_1": abs(r[0]),
            "abs_ret_mean_7": math.fsum(abs(x) for x in r[:7]) / 7,
            "abs_ret_mean_30": math.fsum(abs(x) for x in r) / 30,
            "sq_ret_mean_7": math.fsum(x**2 for x in r[:7]) / 7,
            "log_hl_range_mean_7": math.fsum(rng_[:7]) / 7,
            "log_hl_range_mean_30": math.fsum(rng_) / 30,
            "log_volume_rel_30": math.log1p(v[t])
            - math.fsum(math.log1p(v[t - j]) for j in range(30)) / 30,
        }
        for name, value in want.items():
            assert values[k, column[name]] == value, (t, name)
