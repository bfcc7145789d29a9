"""The forecast's baselines on the test window: rolling historical quantiles and
GARCH(1,1) with Student-t innovations (the ``arch`` package).

Both are built from each coin's daily log-return history as the splits hold it (a row of
date ``d`` carries the return into ``d`` as ``ret_lag_1`` and the return into ``d + 1`` as
its target), so a forecast for a test row of date ``t`` uses only the returns observed up
to ``t``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.train.data import Split

log = logging.getLogger(__name__)

#: Days of history of the historical-quantile baseline.
HISTORY_WINDOW = 365
#: GARCH is fitted in percent returns (the scale ``arch`` expects), forecasts come back
#: in log returns.
PERCENT = 100.0


@dataclass(frozen=True)
class Baseline:
    name: str  #: "historical" or "garch"
    label: str  #: for people: "historical quantiles (365 d)", "GARCH(1,1)-t"
    quantiles: np.ndarray | None  #: [test rows, levels]; None when unavailable
    note: str = ""  #: why it is unavailable, or facts of the fit

    @property
    def available(self) -> bool:
        return self.quantiles is not None


def return_history(splits: Mapping[str, Split]) -> dict[str, pd.Series]:
    """Per coin, the daily log returns the splits hold, indexed by the day they end on."""
    parts: dict[str, dict[pd.Timestamp, float]] = {}
    for split in splits.values():
        dates = pd.to_datetime(split.dates)
        lag = split.features["ret_lag_1"].astype(np.float64)
        target = split.target.astype(np.float64)
        for coin, day, into, ahead in zip(split.coins, dates, lag, target, strict=True):
            series = parts.setdefault(str(coin), {})
            series[day] = float(into)
            series[day + pd.Timedelta(days=1)] = float(ahead)
    return {coin: pd.Series(values).sort_index() for coin, values in parts.items()}


def _test_positions(test: Split) -> dict[str, tuple[np.ndarray, pd.DatetimeIndex]]:
    """Per coin, the positions of its rows in ``test`` and their dates."""
    dates = pd.to_datetime(test.dates)
    out = {}
    for coin in dict.fromkeys(map(str, test.coins)):
        rows = np.flatnonzero(test.coins == coin)
        out[coin] = (rows, pd.DatetimeIndex(dates[rows]))
    return out


def historical_quantiles(
    history: Mapping[str, pd.Series],
    test: Split,
    levels: Sequence[float],
    window: int = HISTORY_WINDOW,
) -> Baseline:
    """The empirical quantiles (numpy's default, linear interpolation) of the previous
    ``window`` daily returns of the coin, rolled forward day by day: for a row of date
    ``t``, the returns into ``t - window + 1 .. t``."""
    out = np.empty((len(test), len(levels)))
    for coin, (rows, dates) in _test_positions(test).items():
        series = history[coin]
        values = series.to_numpy()
        ends = series.index.searchsorted(dates, side="right")
        for row, end in zip(rows, ends, strict=True):
            past = values[max(0, end - window) : end]
            out[row] = np.quantile(past, levels)
    return Baseline("historical", f"historical quantiles ({window} d)", out)


def garch_t(
    history: Mapping[str, pd.Series],
    test: Split,
    levels: Sequence[float],
    fit_end: Mapping[str, pd.Timestamp],
) -> Baseline:
    """GARCH(1,1) with a constant mean and Student-t innovations, fitted per coin on the
    returns up to ``fit_end[coin]`` (the day after the coin's last eval row: its target),
    then rolled over the test window with those parameters fixed, each day's forecast
    from the returns observed up to that day. A fit that fails or does not converge makes
    the baseline unavailable, with the reason, never an error."""
    from arch import arch_model

    out = np.empty((len(test), len(levels)))
    facts = []
    for coin, (rows, dates) in _test_positions(test).items():
        series = history[coin] * PERCENT
        try:
            if coin not in fit_end:
                raise ValueError("no train or eval rows to fit on")
            last = int(series.index.searchsorted(fit_end[coin], side="right"))
            model = arch_model(series, mean="Constant", vol="GARCH", p=1, q=1, dist="t")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # show_warning=False: arch re-enables its ConvergenceWarning itself; the
                # convergence flag below is what decides.
                fitted = model.fit(last_obs=last, disp="off", show_warning=False)
            if fitted.convergence_flag != 0:
                raise RuntimeError(
                    f"the optimiser did not converge (flag {fitted.convergence_flag})"
                )
            forecast = fitted.forecast(horizon=1, start=series.index[0], reindex=True)
            mean = forecast.mean["h.1"].reindex(dates).to_numpy()
            variance = forecast.variance["h.1"].reindex(dates).to_numpy()
            shape = fitted.params[["nu"]].to_numpy()
            z = model.distribution.ppf(np.asarray(levels), shape)
        except Exception as exc:  # a fit is a baseline, never a reason to fail the run
            note = f"GARCH(1,1)-t fit failed for {coin}: {exc}"
            log.warning("%s; the gate uses the historical-quantile baseline alone", note)
            return Baseline("garch", "GARCH(1,1)-t", None, note)
        if not (np.isfinite(mean).all() and np.isfinite(variance).all()):
            note = f"GARCH(1,1)-t for {coin} has no forecast for some test days"
            log.warning("%s; the gate uses the historical-quantile baseline alone", note)
            return Baseline("garch", "GARCH(1,1)-t", None, note)
        out[rows] = (mean[:, None] + np.sqrt(variance)[:, None] * z[None, :]) / PERCENT
        params = fitted.params
        facts.append(
            f"{coin}: alpha {params['alpha[1]']:.3f}, beta {params['beta[1]']:.3f}, "
            f"nu {params['nu']:.2f}"
        )
    return Baseline("garch", "GARCH(1,1)-t", out, "; ".join(facts))


def baselines(splits: Mapping[str, Split], levels: Sequence[float]) -> dict[str, Baseline]:
    """Both quantile baselines on ``splits["test"]``, GARCH fitted on train and eval."""
    history = return_history(splits)
    test = splits["test"]
    fit_end = {}
    for coin in dict.fromkeys(map(str, test.coins)):
        # The coin's last day before the test window: its last eval row, or its last train
        # row when the purge left it no eval rows (a short history).
        before = [
            max(split.dates[split.coins == coin])
            for split in (splits["eval"], splits["train"])
            if np.any(split.coins == coin)
        ]
        if before:
            fit_end[coin] = pd.Timestamp(str(before[0])) + pd.Timedelta(days=1)
    return {
        "historical": historical_quantiles(history, test, levels),
        "garch": garch_t(history, test, levels, fit_end),
    }
