"""Per-coin steps of the transform (numpy, no Beam).

One coin's accepted rows (a ``BarBlock``) → sorted, de-duplicated bars → examples
(``features.compute_features``) → time-ordered train / eval / test split by date. The last
row of a split that a later split follows is purged: its target is the return into that
split's first day. Everything is computed on the coin's arrays at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from components.common.contracts import SPLITS, STAT_COLUMNS
from components.common.features import (
    FEATURE_NAMES,
    HISTORY_DAYS,
    compute_features,
    run_starts,
)
from components.transform.parse import BarBlock, ParsedRow, Rejection
from components.transform.stats import Moments

#: Train, eval and test fractions of each coin's dates, in time order.
DEFAULT_SPLIT = "0.7,0.15,0.15"
#: Default largest factor between a close and the previous accepted close of the coin,
#: either way (``implausible_move``). The shared file's largest move is veritaseum's
#: close of 2017-06-12, 69,000 times the day before's (log move 11.1): 1e6 keeps every
#: real day of the shared file.
DEFAULT_MAX_DAILY_MOVE = 1e6

# Reason codes of rows rejected per coin (after parsing); see parse.py for the others.
CONFLICTING_DUPLICATE = "conflicting_duplicate"
IMPLAUSIBLE_MOVE = "implausible_move"
NON_FINITE_FEATURE = "non_finite_feature"


def parse_split(split: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` or a 3-sequence → three fractions summing to 1 (train > 0)."""
    if isinstance(split, str):
        parts = [p for p in split.replace(" ", "").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"split must be three numbers like 0.7,0.15,0.15; got {split!r}"
            ) from None
    else:
        values = [float(v) for v in split]
    if len(values) != 3:
        raise ValueError(f"split needs three fractions (train, eval, test); got {split!r}")
    if any(not math.isfinite(v) or v < 0 for v in values) or values[0] <= 0:
        raise ValueError(f"split fractions must be >= 0 with train > 0; got {split!r}")
    if abs(sum(values) - 1) > 1e-6:
        raise ValueError(f"split fractions must sum to 1; got {split!r} (sum {sum(values):g})")
    return values[0], values[1], values[2]


def split_sizes(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Rows of train, eval, test for ``n`` date-ordered rows (floors; test takes the rest).

    Sizes before ``process_coin`` purges the last row of each split that a later one follows.
    """
    train = math.floor(n * fractions[0] + 1e-9)
    train_eval = max(train, math.floor(n * (fractions[0] + fractions[1]) + 1e-9))
    return train, train_eval - train, n - train_eval


def as_block(rows: BarBlock | Iterable[ParsedRow]) -> BarBlock:
    return rows if isinstance(rows, BarBlock) else BarBlock.from_rows(rows)


def dedupe_bars(
    rows: BarBlock | Iterable[ParsedRow],
) -> tuple[BarBlock, list[tuple[int, int]]]:
    """Bars sorted by date, keeping the first (lowest line) of each date; and, for every
    dropped row, ``(its line, the kept line of the same date)`` so nothing is lost silently."""
    block = as_block(rows)
    ordered = block.take(np.lexsort((block.line, block.day)))
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered.day[1:] != ordered.day[:-1]
    if first.all():
        return ordered, []
    kept_at = np.maximum.accumulate(np.where(first, np.arange(len(ordered)), 0))
    dropped = np.flatnonzero(~first)
    pairs = zip(
        ordered.line[dropped].tolist(), ordered.line[kept_at[dropped]].tolist(), strict=True
    )
    return ordered.take(np.flatnonzero(first)), list(pairs)


def _iso_dates(days: np.ndarray) -> list[str]:
    return np.datetime_as_string(days.astype("datetime64[D]")).tolist()


def _csv_field(text: str) -> str:
    """``text`` as the csv module writes a field (quoted only when it must be)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([text])
    return out.getvalue()


def _repr_rows(values: np.ndarray) -> list[str]:
    """Each row of ``values`` as its floats' ``repr`` joined by commas.

    ``repr`` is the costly part, and a coin's rows share many values (a return is lag 1 one
    day, lag 2 the next, ..., and the target the day before; seven weekdays): each distinct
    value is formatted once. Signed zeros compare equal, so a -0.0 takes the plain way.
    """
    flat = values.ravel()
    zeros = flat == 0
    if zeros.any() and np.signbit(flat[zeros]).any():
        texts = np.array(list(map(repr, flat.tolist())), dtype=object)
    else:
        distinct, inverse = np.unique(flat, return_inverse=True)
        texts = np.array(list(map(repr, distinct.tolist())), dtype=object)[inverse]
    return list(map(",".join, texts.reshape(values.shape).tolist()))


@dataclass
class CoinRows:
    """Shard rows of one coin in one split, in date order, not yet formatted."""

    coin: str
    #: int days since 1970-01-01
    days: np.ndarray
    #: float64, one column per ``SHARD_COLUMNS[2:]`` (close, features, target)
    values: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.days)

    def csv_text(self) -> str:
        """The rows as shard lines: coin, ISO date, floats in ``repr`` precision; each line
        ends with a newline (the csv module's output for the same fields)."""
        if not self.rows:
            return ""
        floats = _repr_rows(self.values)
        prefix = _csv_field(self.coin) + ","
        return "".join(
            f"{prefix}{date},{rest}\n"
            for date, rest in zip(_iso_dates(self.days), floats, strict=True)
        )


@dataclass
class CoinResult:
    """Everything the transform learns about one coin."""

    coin: str
    bars: int
    duplicates: int
    gaps: int
    #: Lines rejected per coin (conflicting duplicates, implausible moves, non-finite
    #: features or target), in line order; ``raw`` is the parsed bar (``bar_text``).
    rejections: list[Rejection] = field(default_factory=list)
    #: Examples before the purge, and the examples a gap-free history of ``bars`` days
    #: would give (``bars - HISTORY_DAYS``): their ratio is the share gaps left usable.
    examples: int = 0
    ideal_examples: int = 0
    #: ``(dropped line, kept line)`` of each duplicate date (line numbers of the raw file).
    duplicate_lines: list[tuple[int, int]] = field(default_factory=list)
    #: The examples after the purge, in date order: their days (since 1970-01-01), split
    #: (index into SPLITS) and values (one column per ``SHARD_COLUMNS[2:]``).
    days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, len(STAT_COLUMNS) + 1)))

    def counts(self) -> dict[str, int]:
        tally = np.bincount(self.split, minlength=len(SPLITS)).tolist()
        return dict(zip(SPLITS, tally, strict=True))

    def dates(self, split: str | None = None) -> list[dt.date]:
        """Dates of the examples (of one split), in order."""
        days = self.days if split is None else self.days[self.split == SPLITS.index(split)]
        return [dt.date.fromisoformat(d) for d in _iso_dates(days)]

    def rows(self, split: str) -> CoinRows:
        chosen = self.split == SPLITS.index(split)
        return CoinRows(self.coin, self.days[chosen], self.values[chosen])

    def moments(self, split: str = "train") -> Moments:
        """Moments of the statistics columns (features and target) over one split."""
        return Moments.of(self.values[self.split == SPLITS.index(split), 1:], STAT_COLUMNS)

    def date_ranges(self) -> dict[str, tuple[str, str]]:
        """``{split: (first_date, last_date)}`` (ISO) for non-empty splits."""
        out: dict[str, tuple[str, str]] = {}
        for k, split in enumerate(SPLITS):
            days = self.days[self.split == k]
            if len(days):
                first, last = _iso_dates(days[[0, -1]])
                out[split] = (first, last)
        return out

    @property
    def usable_fraction(self) -> float | None:
        """Examples over those of a gap-free history as long; None for a coin too short
        to have any."""
        return self.examples / self.ideal_examples if self.ideal_examples else None

    def info(self) -> dict:
        """The JSON-able per-coin summary (without the examples)."""
        return {
            "coin": self.coin,
            "bars": self.bars,
            "duplicates": self.duplicates,
            "duplicate_lines": [list(pair) for pair in self.duplicate_lines],
            "gaps": self.gaps,
            "counts": self.counts(),
            "ranges": self.date_ranges(),
            "rejected_reasons": dict(Counter(r.code for r in self.rejections)),
            "examples": self.examples,
            "ideal_examples": self.ideal_examples,
        }


def bar_text(coin: str, block: BarBlock, i: int) -> str:
    """The parsed bar ``i`` of ``block`` as ``coin,date,open,high,low,close,volume``: the
    ``raw`` of a row rejected per coin (its line in the raw file is the original)."""
    (date,) = _iso_dates(block.day[i : i + 1])
    values = ",".join(
        repr(float(getattr(block, n)[i])) for n in ("open", "high", "low", "close", "volume")
    )
    return f"{coin},{date},{values}"


def split_conflicts(block: BarBlock) -> tuple[BarBlock, list[tuple[int, str]]]:
    """Remove every line of a date whose lines disagree (any of open, high, low, close,
    volume differs); return the rest and ``(index into block, detail)`` of each removed
    line. Lines of a date that agree exactly stay (``dedupe_bars`` keeps the first)."""
    if len(block) < 2:
        return block, []
    order = np.lexsort((block.line, block.day))
    day = block.day[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = day[1:] != day[:-1]
    if first.all():
        return block, []
    group = np.cumsum(first) - 1
    head = np.flatnonzero(first)[group]  # position (in order) of each date's first line
    differs = np.zeros(len(order), dtype=bool)
    for name in ("open", "high", "low", "close", "volume"):
        column = getattr(block, name)[order]
        differs |= column != column[head]
    bad_group = np.zeros(group[-1] + 1, dtype=bool)
    bad_group[group[differs]] = True
    bad = bad_group[group]
    if not bad.any():
        return block, []
    removed: list[tuple[int, str]] = []
    lines = block.line[order]
    for g in np.unique(group[bad]).tolist():
        members = np.flatnonzero(group == g)
        (date,) = _iso_dates(day[members[:1]])
        for m in members.tolist():
            others = ", ".join(str(x) for x in lines[members].tolist() if x != lines[m])
            removed.append((int(order[m]), f"{date} is also on line(s) {others} with other values"))
    keep = np.ones(len(block), dtype=bool)
    keep[[i for i, _ in removed]] = False
    return block.take(np.flatnonzero(keep)), removed


def implausible_moves(close: np.ndarray, max_move: float) -> list[tuple[int, str, str]]:
    """``(index, code, detail)`` of each bar whose close is more than ``max_move`` times, or
    less than 1/``max_move`` of, the previous accepted close (``implausible_move``), or
    whose ratio to it overflows or underflows, so that its log return is not finite
    (``non_finite_feature``, whatever the limit). ``close`` is in date order; the first
    bar is the first reference."""
    if len(close) < 2:
        return []
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        ratio = close[1:] / close[:-1]
    with np.errstate(invalid="ignore"):  # 0 * inf when the limit is off
        plausible = np.isfinite(ratio) & (ratio > 0) & (ratio <= max_move) & (ratio * max_move >= 1)
    if plausible.all():
        return []
    out: list[tuple[int, str, str]] = []
    reference = float(close[0])
    for i in range(1, len(close)):  # rare: only coins with a bad day get here
        value = float(close[i])
        r = value / reference if math.isfinite(value / reference) else math.inf
        if not (math.isfinite(r) and r > 0):
            out.append((i, NON_FINITE_FEATURE, f"the return from close {reference!r} to "
                        f"{value!r} is not finite"))  # fmt: skip
        elif r > max_move or r * max_move < 1:
            out.append((i, IMPLAUSIBLE_MOVE, f"close={value!r} is {r:.6g} times the previous "
                        f"accepted close {reference!r}, beyond the limit of {max_move:g} "
                        "either way"))  # fmt: skip
        else:
            reference = value
    return out


def _reject(coin: str, block: BarBlock, found: list[tuple[int, str]], code: str):
    return [
        Rejection(int(block.line[i]), f"{code}: {detail}", bar_text(coin, block, i))
        for i, detail in found
    ]


def _reject_coded(coin: str, block: BarBlock, found: list[tuple[int, str, str]]):
    return [
        Rejection(int(block.line[i]), f"{code}: {detail}", bar_text(coin, block, i))
        for i, code, detail in found
    ]


def process_coin(
    coin: str,
    rows: BarBlock | Iterable[ParsedRow],
    fractions: Sequence[float],
    *,
    max_move: float = DEFAULT_MAX_DAILY_MOVE,
) -> CoinResult:
    """Refuse what cannot be modelled, sort, de-duplicate, count gaps, build examples, split
    them by date, purge boundaries.

    Rejected (``CoinResult.rejections``): every line of a date whose lines disagree
    (``conflicting_duplicate``; exact duplicates are dropped, the first kept, as
    ``duplicate_lines``); a close beyond ``max_move`` of the previous accepted one
    (``implausible_move``); a day whose features or target are not finite
    (``non_finite_feature``: the bar is removed and the features computed again, so the
    day is a gap to its neighbours).
    """
    given = as_block(rows)
    block, conflicts = split_conflicts(given)
    rejections = _reject(coin, given, conflicts, CONFLICTING_DUPLICATE)
    bars, dropped = dedupe_bars(block)
    moves = implausible_moves(bars.close, max_move)
    if moves:
        rejections += _reject_coded(coin, bars, moves)
        bars = _without(bars, [i for i, _, _ in moves])
    while True:
        with np.errstate(all="ignore"):
            index, features, target = compute_features(
                bars.day, bars.high, bars.low, bars.close, bars.volume
            )
        bad = ~np.isfinite(features).all(axis=1) | np.isinf(target)
        if not bad.any():
            break
        found = [
            (int(i), _non_finite_detail(features[k], target[k]))
            for k, i in zip(np.flatnonzero(bad).tolist(), index[bad].tolist(), strict=True)
        ]
        rejections += _reject(coin, bars, found, NON_FINITE_FEATURE)
        bars = _without(bars, [i for i, _ in found])
    rejections.sort(key=lambda r: r.line)
    gaps = int(run_starts(bars.day).sum()) - 1 if len(bars) else 0
    # The last day of each run has no target: not a training example.
    known = ~np.isnan(target)
    index, features, target = index[known], features[known], target[known]
    n_train, n_eval, _ = split_sizes(len(index), fractions)
    split = np.full(len(index), 2, dtype=np.int8)
    split[: n_train + n_eval] = 1
    split[:n_train] = 0
    # Purge one day at each split boundary: the last row of a split has as its target the
    # return into the first day of the next split, so keeping it would let train see an
    # eval-period price (and eval a test-period one).
    # The coin's last row ends the last non-empty split and is always kept; a coin without
    # examples stays empty.
    keep = np.ones(len(index), dtype=bool)
    keep[:-1] = split[1:] == split[:-1]
    values = np.column_stack([bars.close[index], features, target])[keep]
    return CoinResult(
        coin=coin,
        bars=len(bars),
        duplicates=len(dropped),
        gaps=gaps,
        duplicate_lines=dropped,
        days=bars.day[index][keep],
        split=split[keep],
        values=values,
        rejections=rejections,
        examples=len(index),
        ideal_examples=max(len(bars) - HISTORY_DAYS, 0),
    )


def _without(block: BarBlock, indexes: list[int]) -> BarBlock:
    keep = np.ones(len(block), dtype=bool)
    keep[indexes] = False
    return block.take(np.flatnonzero(keep))


def _non_finite_detail(features: np.ndarray, target: float) -> str:
    values = zip(FEATURE_NAMES, features.tolist(), strict=True)
    names = [name for name, v in values if not math.isfinite(v)]
    if math.isinf(target):
        names.append("target")
    return f"{', '.join(names)} not finite"
