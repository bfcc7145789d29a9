"""Model features from daily OHLCV history: defined once, used by the Beam transform
and by the model server (no training/serving skew).

Every feature of the row for day ``t`` uses only bars ``t-30 .. t``; the target is the
log return from ``t`` to ``t+1``. A row needs ``HISTORY_DAYS`` consecutive daily bars
ending at ``t``; a calendar gap restarts that warm-up (``run_starts``), so a lag is
always a lag in days, never in rows.

The functions work on one coin's whole date-ordered history at once (numpy arrays, or a
pandas frame with ``feature_frame``); ``latest_features`` is the server's view of the same
computation for the last day of one history.

Exactness: logarithms are the C library's (``math.log``, elementwise) rather than numpy's
SIMD ones, which differ from it in the last bit for about 2% of inputs; squares are
Python's ``x ** 2`` (``_square``); window sums are
accumulated in double-double (TwoSum) and rounded once, which gives the correctly rounded
sum (``math.fsum``) for any window not within ~1e-30 relative of a rounding tie. So the
values are the ones the earlier row-at-a-time definition produced, to the bit.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported only by feature_frame (the server does not need it)
    import pandas as pd

LAGS = 7
SHORT_WINDOW = 7
LONG_WINDOW = 30
#: Bars of history a feature row needs, today included (30 returns need 31 closes).
HISTORY_DAYS = LONG_WINDOW + 1

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_lag_{k}" for k in range(1, LAGS + 1)),
    f"ret_mean_{SHORT_WINDOW}",
    f"ret_std_{SHORT_WINDOW}",
    f"ret_mean_{LONG_WINDOW}",
    f"ret_std_{LONG_WINDOW}",
    "log_hl_range",
    "log_volume_change",
    "dow_sin",
    "dow_cos",
    # Volatility: it clusters, so recent magnitudes (not signs) carry the spread of
    # tomorrow's return that the quantile forecast is about.
    "abs_ret_lag_1",
    f"abs_ret_mean_{SHORT_WINDOW}",
    f"abs_ret_mean_{LONG_WINDOW}",
    f"sq_ret_mean_{SHORT_WINDOW}",
    f"log_hl_range_mean_{SHORT_WINDOW}",
    f"log_hl_range_mean_{LONG_WINDOW}",
    f"log_volume_rel_{LONG_WINDOW}",
)
TARGET_NAME = "target"
#: Columns of the history frame ``feature_frame`` takes.
HISTORY_COLUMNS: tuple[str, ...] = ("date", "open", "high", "low", "close", "volume")

_EPOCH = dt.date(1970, 1, 1)
_EPOCH_WEEKDAY = _EPOCH.weekday()  # Thursday = 3
#: sin and cos of the weekday angle, Monday = 0 .. Sunday = 6.
_DOW_SIN = np.array([math.sin(2 * math.pi * w / 7) for w in range(7)])
_DOW_COS = np.array([math.cos(2 * math.pi * w / 7) for w in range(7)])


@dataclass(frozen=True)
class Bar:
    """One validated daily bar of one coin."""

    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float


def _elementwise(fn, values: np.ndarray) -> np.ndarray:
    return np.fromiter(map(fn, values.tolist()), dtype=np.float64, count=len(values))


def _log(values: np.ndarray) -> np.ndarray:
    return _elementwise(math.log, values)


def _ratio(high, low, first: int) -> np.ndarray:
    """high / low from row ``first`` on. An extreme bar overflows to inf without numpy's
    warning: the caller sees the non-finite feature and refuses it by name."""
    with np.errstate(over="ignore"):
        return (
            np.asarray(high, dtype=np.float64)[first:] / np.asarray(low, dtype=np.float64)[first:]
        )


def _log1p(values: np.ndarray) -> np.ndarray:
    return _elementwise(math.log1p, values)


def _square(x: np.ndarray) -> np.ndarray:
    """``x ** 2`` elementwise, to the bit as Python computes it for a float (C ``pow``).

    ``x * x`` is the correctly rounded square; the C library's ``pow`` is within about
    0.52 ulp, so it may round the other way when the exact square lies near the midpoint
    of two doubles. Those squares (the exact rounding error, from Dekker's product, above
    0.4 ulp; powers of two; and squares too small for the product to be exact) are
    recomputed with ``pow``: about a fifth of them. (0.52 ulp is glibc's bound; with a
    C library less accurate than that, the golden test of the transform would show it.)
    """
    p = x * x
    split = 134217729.0 * x  # 2**27 + 1: x = hi + lo, each half a mantissa
    hi = split - (split - x)
    lo = x - hi
    error = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo
    near = (np.abs(error) > 0.4 * np.spacing(p)) | (np.frexp(p)[0] == 0.5)
    near |= (np.abs(x) < 1e-140) & (x != 0)
    idx = np.flatnonzero(near)
    if len(idx):
        flat = p.reshape(-1)  # p is a new contiguous array: a view
        flat[idx] = list(map(pow, x.reshape(-1)[idx].tolist(), itertools.repeat(2)))
    return p


def _sum(matrix: np.ndarray) -> np.ndarray:
    """``math.fsum`` of each row of ``matrix`` (the correctly rounded sum).

    Double-double accumulation (TwoSum, Ogita-Rump-Oishi "Sum2") then one rounding; where
    its error bound does not rule out a different rounding (the sum lies near the midpoint
    of two doubles, e.g. after heavy cancellation), that element is summed by ``math.fsum``.
    A window holding an infinite value sums to a non-finite value without numpy's warning:
    the caller refuses that row's features by name.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return _sum_finite(matrix)


def _sum_finite(matrix: np.ndarray) -> np.ndarray:
    terms = matrix.T
    total = terms[0].copy()
    error = np.zeros_like(total)
    magnitude = np.abs(total)
    for x in terms[1:]:
        s = total + x
        b = s - total
        error += (total - (s - b)) + (x - b)
        total = s
        magnitude += np.abs(x)
    result = total + error
    # Exact rounding error of `result` as total + error, and Sum2's bound on how far
    # total + error lies from the true sum (gamma_{n-1}^2 * sum|x|, with a margin of 2).
    b = result - total
    rounding = (total - (result - b)) + (error - b)
    gamma = len(terms) * 2.0**-53 * 1.01
    bound = 2.0 * gamma * gamma * magnitude * 1.01
    doubtful = (np.abs(0.5 * np.spacing(np.abs(result)) - np.abs(rounding)) <= bound) | (
        np.abs(np.frexp(result)[0]) == 0.5
    )
    doubtful |= (result == 0) & (magnitude > 0)
    idx = np.flatnonzero(doubtful)
    if len(idx):
        result[idx] = list(map(math.fsum, matrix[idx].tolist()))
    return result


def _mean_std(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std (ddof=0) of each row of ``window``."""
    n = window.shape[1]
    mean = _sum(window) / n
    return mean, np.sqrt(_sum(_square(window - mean[:, None])) / n)


def epoch_days(dates: Sequence[dt.date]) -> np.ndarray:
    """Dates → int64 days since 1970-01-01 (the representation the arrays use)."""
    offset = _EPOCH.toordinal()
    return np.fromiter((d.toordinal() - offset for d in dates), dtype=np.int64, count=len(dates))


def run_starts(days: np.ndarray) -> np.ndarray:
    """True where a run of consecutive days starts (the first day, and after each gap)."""
    starts = np.ones(len(days), dtype=bool)
    starts[1:] = np.diff(days) != 1
    return starts


def compute_features(
    days: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of every day with full history, for one coin's bars.

    Inputs are equally long arrays sorted by ``days`` (int days since 1970-01-01, no
    duplicates). Returns ``(rows, features, target)``: the indexes of the days that end
    ``HISTORY_DAYS`` consecutive days (ascending), a float64 matrix with one column per
    ``FEATURE_NAMES``, and the target (NaN for the last day of a run: tomorrow is unknown).
    """
    days = np.asarray(days, dtype=np.int64)
    close = np.asarray(close, dtype=np.float64)
    n = len(days)
    width = len(FEATURE_NAMES)
    if n < HISTORY_DAYS:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width)), np.zeros(0)
    starts = run_starts(days)
    run_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    position = np.arange(n) - run_start  # days since the run started
    # ret[i]: log return into day i (meaningless at a run start, never used there).
    ret = np.empty(n)
    ret[0] = np.nan
    ret[1:] = _log(close[1:] / close[:-1])
    first = HISTORY_DAYS - 1
    # Computed for every day t from `first` on, then only the days with full history kept:
    # back[k, j] is the return into day t - j for the k-th such day t.
    back = np.lib.stride_tricks.sliding_window_view(ret[1:], LONG_WINDOW)[:, ::-1]
    log_volume = _log1p(np.asarray(volume, dtype=np.float64))
    mean_short, std_short = _mean_std(back[:, :SHORT_WINDOW])
    mean_long, std_long = _mean_std(back)
    weekday = (days[first:] + _EPOCH_WEEKDAY) % 7
    magnitude = np.abs(back)
    # Log high/low range of every day, and the same windows back from t as the returns.
    log_range = np.full(n, np.nan)
    log_range[first - LONG_WINDOW + 1 :] = _log(_ratio(high, low, first - LONG_WINDOW + 1))
    ranges = np.lib.stride_tricks.sliding_window_view(
        log_range[first - LONG_WINDOW + 1 :], LONG_WINDOW
    )[:, ::-1]
    volumes = np.lib.stride_tricks.sliding_window_view(
        log_volume[first - LONG_WINDOW + 1 :], LONG_WINDOW
    )
    columns = [
        *back[:, :LAGS].T,
        mean_short,
        std_short,
        mean_long,
        std_long,
        _log(_ratio(high, low, first)),
        log_volume[first:] - log_volume[first - 1 : n - 1],
        _DOW_SIN[weekday],
        _DOW_COS[weekday],
        magnitude[:, 0],
        _sum(magnitude[:, :SHORT_WINDOW]) / SHORT_WINDOW,
        _sum(magnitude) / LONG_WINDOW,
        _sum(_square(back[:, :SHORT_WINDOW])) / SHORT_WINDOW,
        _sum(ranges[:, :SHORT_WINDOW]) / SHORT_WINDOW,
        _sum(ranges) / LONG_WINDOW,
        log_volume[first:] - _sum(volumes) / LONG_WINDOW,
    ]
    keep = position[first:] >= first
    rows = np.flatnonzero(keep) + first
    features = np.column_stack(columns)[keep]
    last_of_run = np.ones(n, dtype=bool)
    last_of_run[:-1] = starts[1:]
    nxt = np.append(ret[1:], np.nan)  # the return into tomorrow
    target = np.where(last_of_run[rows], np.nan, nxt[rows])
    return rows, features, target


def feature_frame(history: pd.DataFrame) -> pd.DataFrame:
    """One coin's history frame (``HISTORY_COLUMNS``; sorted by date, one row per date) →
    a frame of ``date`` (datetime64), ``close``, ``FEATURE_NAMES`` and ``target`` with one
    row per day that has full history (``target`` NaN for the last day of each run)."""
    import pandas as pd

    dates = pd.to_datetime(history["date"]).to_numpy().astype("datetime64[D]")
    days = dates.astype(np.int64)
    close = history["close"].to_numpy(dtype=np.float64)
    rows, features, target = compute_features(
        days,
        history["high"].to_numpy(dtype=np.float64),
        history["low"].to_numpy(dtype=np.float64),
        close,
        history["volume"].to_numpy(dtype=np.float64),
    )
    frame = pd.DataFrame(features, columns=list(FEATURE_NAMES))
    frame.insert(0, "close", close[rows])
    frame.insert(0, "date", dates[rows])
    frame[TARGET_NAME] = target
    return frame


def latest_features(bars: Sequence[Bar]) -> dict[str, float]:
    """Features of the most recent bar, for serving a forecast of the next day.

    ``bars`` must be sorted by date; only the trailing run of consecutive days is used.
    Raises ValueError when that run is shorter than ``HISTORY_DAYS``.
    """
    tail = list(bars[-HISTORY_DAYS:])
    days = epoch_days([b.date for b in tail])
    run = len(tail) - int(np.flatnonzero(run_starts(days))[-1]) if tail else 0
    if run < HISTORY_DAYS:
        raise ValueError(
            f"features need {HISTORY_DAYS} consecutive daily bars ending at the row; got {run}"
        )
    _, features, _ = compute_features(
        days,
        np.array([b.high for b in tail]),
        np.array([b.low for b in tail]),
        np.array([b.close for b in tail]),
        np.array([b.volume for b in tail]),
    )
    return dict(zip(FEATURE_NAMES, features[-1].tolist(), strict=True))
