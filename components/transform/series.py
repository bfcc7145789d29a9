"""Per-coin steps of the transform and the train statistics (pure Python, no Beam).

One coin's accepted rows → sorted, de-duplicated bars → examples (``features.build_examples``)
→ time-ordered train / eval / test split by date. The last row of a split that a later
split follows is purged: its target is the return into that split's first day.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from components.common.contracts import SHARD_COLUMNS, SPLITS
from components.common.features import (
    TARGET_NAME,
    Bar,
    build_examples,
    split_on_gaps,
)
from components.transform.parse import ParsedRow

#: Train, eval and test fractions of each coin's dates, in time order.
DEFAULT_SPLIT = "0.7,0.15,0.15"


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


def dedupe_bars(rows: Iterable[ParsedRow]) -> tuple[list[Bar], list[tuple[int, int]]]:
    """Bars sorted by date, keeping the first (lowest line) of each date; and, for every
    dropped row, ``(its line, the kept line of the same date)`` so nothing is lost silently."""
    bars: list[Bar] = []
    dropped: list[tuple[int, int]] = []
    kept_line = 0
    for row in sorted(rows, key=lambda r: (r.bar.date, r.line)):
        if bars and bars[-1].date == row.bar.date:
            dropped.append((row.line, kept_line))
        else:
            bars.append(row.bar)
            kept_line = row.line
    return bars, dropped


@dataclass
class CoinResult:
    """Everything the transform learns about one coin."""

    coin: str
    bars: int
    duplicates: int
    gaps: int
    #: ``(dropped line, kept line)`` of each duplicate date (line numbers of the raw file).
    duplicate_lines: list[tuple[int, int]] = field(default_factory=list)
    #: ``(split, example)`` in date order; examples as yielded by ``build_examples``.
    examples: list[tuple[str, dict]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SPLITS, 0)
        for split, _ in self.examples:
            out[split] += 1
        return out

    def date_ranges(self) -> dict[str, tuple[str, str]]:
        """``{split: (first_date, last_date)}`` (ISO) for non-empty splits."""
        out: dict[str, tuple[str, str]] = {}
        for split, row in self.examples:
            iso = row["date"].isoformat()
            out[split] = (out[split][0], iso) if split in out else (iso, iso)
        return out

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
        }


def process_coin(coin: str, rows: Iterable[ParsedRow], fractions: Sequence[float]) -> CoinResult:
    """Sort, de-duplicate, count gaps, build examples, split them by date, purge boundaries."""
    bars, dropped = dedupe_bars(rows)
    gaps = len(split_on_gaps(bars)) - 1 if bars else 0
    # The last day of each run has no target: not a training example.
    examples = [ex for ex in build_examples(bars) if ex[TARGET_NAME] is not None]
    n_train, n_eval, _ = split_sizes(len(examples), fractions)
    labelled = [
        ("train" if i < n_train else "eval" if i < n_train + n_eval else "test", ex)
        for i, ex in enumerate(examples)
    ]
    # Purge one day at each split boundary: the last row of a split has as its target the
    # return into the first day of the next split, so keeping it would let train see an
    # eval-period price (and eval a test-period one).
    # The coin's last row ends the last non-empty split and is always kept; a coin without
    # examples stays empty.
    labelled = [
        item for item, nxt in zip(labelled, labelled[1:], strict=False) if nxt[0] == item[0]
    ] + labelled[-1:]
    return CoinResult(
        coin=coin,
        bars=len(bars),
        duplicates=len(dropped),
        gaps=gaps,
        duplicate_lines=dropped,
        examples=labelled,
    )


def example_to_csv_row(coin: str, example: Mapping) -> list[str]:
    """One shard line: coin, ISO date, floats in repr precision."""
    return [
        coin,
        example["date"].isoformat(),
        *(repr(float(example[name])) for name in SHARD_COLUMNS[2:]),
    ]
