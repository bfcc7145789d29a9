"""The quantile baselines (components.train.baselines) on small series: the return history
rebuilt from the splits, rolling historical quantiles by hand, GARCH(1,1)-t against the
``arch`` package called directly, and GARCH's failure path."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest

from components.common.features import FEATURE_NAMES
from components.train.baselines import (
    HISTORY_WINDOW,
    PERCENT,
    Baseline,
    baselines,
    garch_t,
    historical_quantiles,
    return_history,
)
from components.train.data import Split

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
START = dt.date(2020, 1, 1)


def day(k: int) -> str:
    return (START + dt.timedelta(days=k)).isoformat()


def make_split(name: str, rows: list[tuple[str, int, float, float]]) -> Split:
    """A split of ``(coin, day number, return into the day, return into the next day)``
    rows, sorted by date then coin as ``load_split`` sorts them; other features zero."""
    rows = sorted(rows, key=lambda r: (r[1], r[0]))
    n = len(rows)
    features = {f: np.zeros(n, dtype=np.float32) for f in FEATURE_NAMES}
    features["ret_lag_1"] = np.array([r[2] for r in rows], dtype=np.float32)
    return Split(
        name=name,
        features=features,
        target=np.array([r[3] for r in rows], dtype=np.float32),
        close=np.full(n, 100.0),
        dates=np.array([day(r[1]) for r in rows]),
        coins=np.array([r[0] for r in rows]),
    )


def splits_of(returns: dict[str, np.ndarray], bounds: tuple[int, int], first: int = 1):
    """Train/eval/test splits of each coin's ``returns`` (``returns[k]`` is the return into
    day ``k``): rows for days ``first .. len - 2``, split at ``bounds``, each split's last
    day before the next purged, as the transform writes them."""
    parts: dict[str, list] = {"train": [], "eval": [], "test": []}
    for coin, r in returns.items():
        for k in range(first, len(r) - 1):
            if k in (bounds[0] - 1, bounds[1] - 1):
                continue  # purged
            split = "train" if k < bounds[0] else "eval" if k < bounds[1] else "test"
            parts[split].append((coin, k, float(r[k]), float(r[k + 1])))
    return {name: make_split(name, rows) for name, rows in parts.items()}


def test_return_history_rebuilds_each_coins_series_across_splits_and_purged_days():
    rng = np.random.default_rng(0)
    returns = {
        "aaa": rng.normal(0, 0.03, 40).astype(np.float32),
        "bbb": rng.normal(0, 0.05, 40).astype(np.float32),
    }
    splits = splits_of(returns, (25, 32), first=3)
    assert day(24) not in splits["train"].dates and day(31) not in splits["eval"].dates
    history = return_history(splits)
    assert sorted(history) == ["aaa", "bbb"]
    for coin, r in returns.items():
        series = history[coin]
        # Returns into days 3 .. 39: ret_lag_1 of each row and the target of the last.
        assert list(series.index) == list(pd.date_range(day(3), day(39), freq="D"))
        assert series.to_numpy().tolist() == r[3:].astype(np.float64).tolist()


def test_historical_quantiles_use_exactly_the_previous_window_returns():
    """window 3: the row of day t takes the returns into t-2, t-1 and t (numpy's linear
    interpolation), never the return into t+1 (its target)."""
    r = np.array([0.0, 0.01, -0.02, 0.03, 0.05, -0.04, 0.02, 0.0, 0.01], dtype=np.float32)
    splits = splits_of({"c": r}, (4, 6))
    history = return_history(splits)
    test = splits["test"]
    assert test.dates.tolist() == [day(6), day(7)]
    got = historical_quantiles(history, test, (0.25, 0.5, 0.75), window=3)
    assert got.name == "historical" and got.label == "historical quantiles (3 d)"
    assert got.available and got.note == ""
    f = r.astype(np.float64)
    # Day 6: into days 4, 5, 6 = 0.05, -0.04, 0.02; sorted -0.04 0.02 0.05.
    # 0.25 at position 0.5: (-0.04 + 0.02) / 2; 0.75 at 1.5: (0.02 + 0.05) / 2.
    np.testing.assert_allclose(
        got.quantiles[0], [(f[5] + f[6]) / 2, f[6], (f[6] + f[4]) / 2], rtol=1e-12
    )
    # Day 7: into days 5, 6, 7 = -0.04, 0.02, 0.0; sorted -0.04 0 0.02.
    np.testing.assert_allclose(
        got.quantiles[1], [(f[5] + f[7]) / 2, f[7], (f[7] + f[6]) / 2], rtol=1e-12, atol=1e-18
    )
    # The targets (returns into days 7 and 8) changed: nothing moves.
    r2 = r.copy()
    r2[8] = 9.0
    moved = splits_of({"c": r2}, (4, 6))
    again = historical_quantiles(return_history(moved), moved["test"], (0.25, 0.5, 0.75), 3)
    np.testing.assert_array_equal(again.quantiles, got.quantiles)


def test_historical_quantiles_roll_a_365_day_window_by_default():
    """The return into day k is k (distinct, increasing), so each level's quantile names
    the window: for the row of day t, the window holds t-364 .. t; the median is t-182
    and the 0.05 quantile t - 364 + 0.05 · 364."""
    n = 500
    r = np.arange(n, dtype=np.float32)
    splits = splits_of({"c": r}, (400, 450))
    test = splits["test"]
    got = historical_quantiles(return_history(splits), test, LEVELS)
    assert HISTORY_WINDOW == 365 and got.label == "historical quantiles (365 d)"
    t = np.array([(dt.date.fromisoformat(d) - START).days for d in test.dates], dtype=float)
    assert t[0] == 450 and t[-1] == n - 2
    expected = np.stack([t - 364 + level * 364 for level in LEVELS], axis=1)
    np.testing.assert_allclose(got.quantiles, expected, rtol=1e-12)
    # Early in a series, fewer than 365 returns: all of them (days 1 .. t).
    short = splits_of({"c": r[:100]}, (60, 80))
    early = historical_quantiles(return_history(short), short["test"], [0.5])
    t0 = (dt.date.fromisoformat(short["test"].dates[0]) - START).days
    assert early.quantiles[0, 0] == pytest.approx((1 + t0) / 2)


def test_historical_quantiles_keep_coins_apart():
    rng = np.random.default_rng(4)
    a = rng.normal(0, 0.01, 60).astype(np.float32)
    b = rng.normal(0, 0.10, 60).astype(np.float32)
    splits = splits_of({"aaa": a, "bbb": b}, (40, 50))
    test = splits["test"]
    got = historical_quantiles(return_history(splits), test, LEVELS, window=20)
    for row, (coin, date) in enumerate(zip(test.coins, test.dates, strict=True)):
        t = (dt.date.fromisoformat(date) - START).days
        series = (a if coin == "aaa" else b).astype(np.float64)
        np.testing.assert_allclose(
            got.quantiles[row], np.quantile(series[t - 19 : t + 1], LEVELS), rtol=1e-12
        )


def simulated_garch(nobs: int = 700, seed: int = 7) -> np.ndarray:
    """Percent returns of a GARCH(1,1)-t process (arch's own simulator)."""
    from arch.univariate import GARCH, ConstantMean, StudentsT

    model = ConstantMean(
        None, volatility=GARCH(p=1, q=1), distribution=StudentsT(seed=np.random.RandomState(seed))
    )
    return model.simulate([0.05, 0.1, 0.1, 0.85, 6.0], nobs=nobs, burn=300)["data"].to_numpy()


def test_garch_t_forecasts_are_arch_fitted_then_rolled_with_fixed_parameters():
    """Fit with ``arch`` directly on the returns up to ``fit_end`` (inclusive), then roll the
    GARCH(1,1) recursion by hand over the test window with those parameters:
    sigma²(t+1) = omega + alpha (r_t - mu)² + beta sigma²(t), the quantile
    mu + sigma(t+1) · q_t(level) with the unit-variance Student t of ``nu`` degrees."""
    import warnings

    from arch import arch_model
    from scipy import stats

    returns = simulated_garch() / PERCENT
    # What the baseline hands to arch (x / 100 * 100 is not always x; the optimiser's path
    # would move by its tolerance).
    percent = returns * PERCENT
    n, fit_n = len(percent), 600
    index = pd.DatetimeIndex([pd.Timestamp(day(k)) for k in range(n)])
    history = {"sim": pd.Series(returns, index=index)}
    test_days = list(range(fit_n, n - 1))
    test = make_split("test", [("sim", k, 0.0, 0.0) for k in test_days])
    fit_end = {"sim": index[fit_n - 1]}

    got = garch_t(history, test, LEVELS, fit_end)
    assert got.available and got.name == "garch" and got.label == "GARCH(1,1)-t"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = arch_model(
            pd.Series(percent[:fit_n], index=index[:fit_n]),
            mean="Constant",
            vol="GARCH",
            p=1,
            q=1,
            dist="t",
        ).fit(disp="off")
    mu, omega, alpha, beta, nu = (
        fitted.params[k] for k in ("mu", "omega", "alpha[1]", "beta[1]", "nu")
    )
    assert got.note == f"sim: alpha {alpha:.3f}, beta {beta:.3f}, nu {nu:.2f}"
    z = stats.t.ppf(LEVELS, nu) * np.sqrt((nu - 2) / nu)
    # sigma² of the return into the last fitted day (arch's), then the recursion forward
    # by hand: sigma2[k] is the variance of the return into day k+1, known on day k.
    variance = float(fitted.conditional_volatility.iloc[-1]) ** 2
    sigma2 = {}
    for k in range(fit_n - 1, n - 1):
        variance = omega + alpha * (percent[k] - mu) ** 2 + beta * variance
        sigma2[k] = variance
    expected = np.array([(mu + np.sqrt(sigma2[t]) * z) / PERCENT for t in test_days])
    np.testing.assert_allclose(got.quantiles, expected, rtol=1e-9)
    # Increasing along the levels and symmetric around the mean (the t is symmetric).
    assert (np.diff(got.quantiles, axis=1) > 0).all()
    np.testing.assert_allclose(
        got.quantiles[:, 0] + got.quantiles[:, -1], 2 * mu / PERCENT, rtol=0, atol=1e-8
    )


def test_garch_fit_on_train_and_eval_only_through_baselines():
    """``baselines`` fits GARCH on the returns up to the day after the last eval row (its
    target): a change to a later return moves no parameter, only later forecasts."""
    percent = simulated_garch(nobs=500, seed=3)
    r = (percent / PERCENT).astype(np.float32)
    splits = splits_of({"sim": r}, (350, 420))
    both = baselines(splits, LEVELS)
    assert set(both) == {"historical", "garch"} and both["garch"].available
    later = r.copy()
    later[-1] *= 5  # the return into the last day: after every test row's forecast
    moved = baselines(splits_of({"sim": later}, (350, 420)), LEVELS)
    assert moved["garch"].note == both["garch"].note
    np.testing.assert_array_equal(moved["garch"].quantiles, both["garch"].quantiles)
    # Eval's last row is day 418 (419 is purged); its target, the return into day 419,
    # is the last return of the fit: a change to it changes the fitted parameters.
    assert splits["eval"].dates[-1] == day(418) and splits["test"].dates[0] == day(420)
    earlier = r.copy()
    earlier[419] *= 5
    changed = baselines(splits_of({"sim": earlier}, (350, 420)), LEVELS)
    assert changed["garch"].note != both["garch"].note


@pytest.mark.parametrize(
    ("series", "reason"),
    [
        (np.full(120, 0.003), "did not converge"),  # constant returns: no variance to fit
        (np.zeros(120), "did not converge"),
    ],
)
def test_a_garch_fit_that_fails_makes_the_baseline_unavailable(series, reason, caplog):
    index = pd.DatetimeIndex([pd.Timestamp(day(k)) for k in range(len(series))])
    history = {"flat": pd.Series(series, index=index)}
    test = make_split("test", [("flat", k, 0.0, 0.0) for k in range(100, 119)])
    with caplog.at_level(logging.WARNING, logger="components.train.baselines"):
        got = garch_t(history, test, LEVELS, {"flat": index[99]})
    assert got == Baseline("garch", "GARCH(1,1)-t", None, got.note)
    assert not got.available
    assert got.note.startswith("GARCH(1,1)-t fit failed for flat: ")
    assert reason in got.note
    assert "historical-quantile baseline alone" in caplog.text


def test_a_garch_fit_that_raises_is_reported_not_raised():
    """Too few returns for ``arch`` to fit: an exception inside, a note outside."""
    index = pd.DatetimeIndex([pd.Timestamp(day(k)) for k in range(4)])
    history = {"tiny": pd.Series([0.01, -0.02, 0.03, 0.0], index=index)}
    test = make_split("test", [("tiny", 3, 0.0, 0.0)])
    got = garch_t(history, test, LEVELS, {"tiny": index[0]})
    assert not got.available
    assert got.note.startswith("GARCH(1,1)-t fit failed for tiny: ")


def test_a_coin_without_eval_rows_does_not_stop_the_baselines():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.03, 200)
    rows: dict[str, list] = {"train": [], "eval": [], "test": []}
    for k in range(1, 199):
        split = "train" if k < 140 else "eval" if k < 170 else "test"
        rows[split].append(("aaa", k, r[k], r[k + 1]))
    for k in range(150, 199):  # "bbb": train rows then test rows, its eval purged to nothing
        rows["train" if k < 185 else "test"].append(("bbb", k, 2 * r[k], 2 * r[k + 1]))
    splits = {name: make_split(name, part) for name, part in rows.items()}
    both = baselines(splits, LEVELS)
    assert both["historical"].available
    # bbb's GARCH is fitted on its train rows (nothing of its test window)
    assert both["garch"].available, both["garch"].note


def test_a_garch_fit_that_fails_warns_only_through_its_note():
    import warnings

    series = np.full(120, 0.003)
    index = pd.DatetimeIndex([pd.Timestamp(day(k)) for k in range(len(series))])
    test = make_split("test", [("flat", k, 0.0, 0.0) for k in range(100, 119)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = garch_t({"flat": pd.Series(series, index=index)}, test, LEVELS, {"flat": index[99]})
    assert not got.available
    assert [str(w.message) for w in caught] == []
