"""Small hand-made CSVs in the raw schema, for tests whose expectations are computed by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

HEADER = "slug,symbol,name,date,ranknow,open,high,low,close,volume,market,close_ratio,spread"
MONDAY = dt.date(2021, 1, 4)


def line(
    coin: str,
    day: dt.date,
    close: float,
    *,
    open_: float | None = None,
    high: float | None = None,
    low: float | None = None,
    volume: float = 1000.0,
    day_first: bool = False,
) -> str:
    """One raw CSV line; high/low default to close ±2%, open to close."""
    high = close * 1.02 if high is None else high
    low = close * 0.98 if low is None else low
    open_ = close if open_ is None else open_
    date = f"{day.day}/{day.month}/{day.year}" if day_first else day.isoformat()
    return (
        f"{coin},{coin[:3].upper()},{coin.title()},{date},1,{open_!r},{high!r},{low!r},"
        f"{close!r},{volume!r},1,0.5,1"
    )


def series(
    coin: str,
    closes: Sequence[float],
    start: dt.date = MONDAY,
    volumes: Sequence[float] | None = None,
) -> list[str]:
    """Consecutive daily lines of one coin from ``start``."""
    volumes = volumes or [1000.0] * len(closes)
    return [
        line(coin, start + dt.timedelta(days=i), c, volume=v)
        for i, (c, v) in enumerate(zip(closes, volumes, strict=True))
    ]


def write_csv(path: Path, lines: Iterable[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def walk(n: int, start: float = 100.0) -> list[float]:
    """A deterministic zig-zag price path of ``n`` closes (no randomness, all positive)."""
    closes = [start]
    for i in range(1, n):
        closes.append(closes[-1] * (1 + 0.01 * ((i * 7) % 5 - 2)))
    return closes
