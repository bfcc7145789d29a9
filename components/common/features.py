"""Model features from daily OHLCV history: defined once, used by the Beam transform
and by the model server (no training/serving skew).

Every feature of the row for day ``t`` uses only bars ``t-30 .. t``; the target is the
log return from ``t`` to ``t+1``. A row needs ``HISTORY_DAYS`` consecutive daily bars
ending at ``t``; a calendar gap restarts that warm-up (``split_on_gaps``), so a lag is
always a lag in days, never in rows.

Pure Python (``math`` only) so it runs unchanged inside Beam workers and the server.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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
)
TARGET_NAME = "target"


@dataclass(frozen=True)
class Bar:
    """One validated daily bar of one coin."""

    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _std(values: Sequence[float]) -> float:
    """Population standard deviation (ddof=0)."""
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / len(values))


def log_return(prev_close: float, close: float) -> float:
    return math.log(close / prev_close)


def features_at(bars: Sequence[Bar], i: int) -> dict[str, float]:
    """Features of day ``bars[i]`` from ``bars[i-30 .. i]`` (consecutive days, sorted).

    Raises ValueError when fewer than ``HISTORY_DAYS`` bars end at ``i``.
    """
    if i < HISTORY_DAYS - 1 or i >= len(bars):
        raise ValueError(
            f"features need {HISTORY_DAYS} consecutive daily bars ending at the row; "
            f"got {min(i, len(bars) - 1) + 1}"
        )
    # returns[j] is the log return into day i-j (j=0: from i-1 to i).
    returns = [log_return(bars[i - j - 1].close, bars[i - j].close) for j in range(LONG_WINDOW)]
    today = bars[i]
    out: dict[str, float] = {}
    for k in range(1, LAGS + 1):
        out[f"ret_lag_{k}"] = returns[k - 1]
    short = returns[:SHORT_WINDOW]
    out[f"ret_mean_{SHORT_WINDOW}"] = _mean(short)
    out[f"ret_std_{SHORT_WINDOW}"] = _std(short)
    out[f"ret_mean_{LONG_WINDOW}"] = _mean(returns)
    out[f"ret_std_{LONG_WINDOW}"] = _std(returns)
    out["log_hl_range"] = math.log(today.high / today.low)
    # log1p: early history has volume 0 (the source did not record it before late 2013).
    out["log_volume_change"] = math.log1p(today.volume) - math.log1p(bars[i - 1].volume)
    weekday = today.date.weekday()  # Monday = 0
    out["dow_sin"] = math.sin(2 * math.pi * weekday / 7)
    out["dow_cos"] = math.cos(2 * math.pi * weekday / 7)
    return out


def split_on_gaps(bars: Sequence[Bar]) -> list[list[Bar]]:
    """Split date-sorted, duplicate-free bars into runs of consecutive days."""
    segments: list[list[Bar]] = []
    for bar in bars:
        if segments and (bar.date - segments[-1][-1].date).days == 1:
            segments[-1].append(bar)
        else:
            segments.append([bar])
    return segments


def build_examples(bars: Sequence[Bar]) -> Iterator[dict]:
    """Yield one example per day with full history: ``date``, ``close``, features, target.

    ``bars`` must be sorted by date without duplicates. The target of the last day of
    each consecutive run is None (tomorrow is unknown); the caller drops those rows from
    training data and keeps them for serving.
    """
    for segment in split_on_gaps(bars):
        for i in range(HISTORY_DAYS - 1, len(segment)):
            row = {"date": segment[i].date, "close": segment[i].close}
            row.update(features_at(segment, i))
            row[TARGET_NAME] = (
                log_return(segment[i].close, segment[i + 1].close) if i + 1 < len(segment) else None
            )
            yield row


def latest_features(bars: Sequence[Bar]) -> dict[str, float]:
    """Features of the most recent bar, for serving a forecast of the next day.

    ``bars`` must be sorted; only the trailing run of consecutive days is used.
    """
    tail = split_on_gaps(bars)[-1] if bars else []
    return features_at(tail, len(tail) - 1)
