"""Normalisation statistics (train split only) and the ``stats.json`` document."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from components.common.contracts import SPLITS, STAT_COLUMNS, STAT_DTYPE
from components.common.features import FEATURE_NAMES, HISTORY_DAYS, TARGET_NAME


class Moments:
    """Count, mean and sum of squared deviations per column, mergeable (Chan et al.)."""

    def __init__(self, names: Sequence[str] = STAT_COLUMNS):
        self.names = tuple(names)
        self.n = 0
        self.mean = dict.fromkeys(self.names, 0.0)
        self.m2 = dict.fromkeys(self.names, 0.0)

    @classmethod
    def of(cls, matrix: np.ndarray, names: Sequence[str] = STAT_COLUMNS) -> Moments:
        """Moments of the columns of ``matrix`` (one per name)."""
        moments = cls(names)
        matrix = np.asarray(matrix, dtype=np.float64).reshape(-1, len(moments.names))
        moments.n = len(matrix)
        if moments.n:
            mean = matrix.mean(axis=0)
            m2 = ((matrix - mean) ** 2).sum(axis=0)
            moments.mean = dict(zip(moments.names, mean.tolist(), strict=True))
            moments.m2 = dict(zip(moments.names, m2.tolist(), strict=True))
        return moments

    def merge(self, other: Moments) -> Moments:
        if other.n == 0:
            return self
        n = self.n + other.n
        for name in self.names:
            delta = other.mean[name] - self.mean[name]
            self.mean[name] += delta * other.n / n
            self.m2[name] += other.m2[name] + delta * delta * self.n * other.n / n
        self.n = n
        return self

    def std(self) -> dict[str, float]:
        """Population std per column; 0 (or an empty set) is reported as 1.0."""
        out = {}
        for name in self.names:
            s = math.sqrt(self.m2[name] / self.n) if self.n else 0.0
            out[name] = s if s > 0 and math.isfinite(s) else 1.0
        return out


def merge_moments(parts: Iterable[Moments]) -> Moments:
    """Chan's merge of ``parts``, in the order given."""
    total = Moments()
    for part in parts:
        total.merge(part)
    return total


def build_stats(
    *,
    train_moments: Moments,
    coin_infos: Iterable[Mapping],
    input_rows: int,
    accepted_rows: int,
    rejected_rows: int,
    blank_lines: int,
    rejected_reasons: Mapping[str, int],
    coins_in_input: Mapping[str, int],
    split_fractions: Sequence[float],
    input_path: str,
    warn_usable_fraction: float = 0.0,
) -> dict:
    """The ``stats.json`` document of the transform → tune/train contract (plus extras).

    Contract keys: feature_names, target_name, dtypes, mean, std, splits, coins,
    input_rows, accepted_rows, rejected_rows. Extras: blank_lines, rejected_reasons,
    coins_in_input (accepted rows per slug, all coins), split_fractions, input; and, only
    when a coin's gaps leave less than ``warn_usable_fraction`` of its rows usable,
    ``warnings`` (sentences) and ``low_usable_coins`` (``{coin: usable share}``). Rows
    a coin's summary lists as rejected (``rejected_reasons``) move from accepted to
    rejected.
    ``mean``/``std`` are empty when the train split is.
    """
    infos = sorted(coin_infos, key=lambda info: info["coin"])
    # Rows rejected per coin (after parsing) were counted as accepted by the parser.
    rejected_reasons = Counter(rejected_reasons)
    coins_in_input = Counter(coins_in_input)
    for info in infos:
        later = info.get("rejected_reasons", {})
        rejected_reasons.update(later)
        coins_in_input[info["coin"]] -= sum(later.values())
        accepted_rows -= sum(later.values())
        rejected_rows += sum(later.values())
    low = low_usable_coins(infos, warn_usable_fraction)
    splits: dict[str, dict] = {}
    for split in SPLITS:
        ranges = [info["ranges"][split] for info in infos if split in info["ranges"]]
        splits[split] = {
            "rows": sum(info["counts"][split] for info in infos),
            "start": min((r[0] for r in ranges), default=None),
            "end": max((r[1] for r in ranges), default=None),
        }
    coins = {
        info["coin"]: {
            **info["counts"],
            "duplicates": info["duplicates"],
            "gaps": info["gaps"],
            "bars": info["bars"],
            # (dropped line, kept line) per duplicate date: the raw file in the
            # lake is immutable, so every dropped row can be found again.
            "duplicate_lines": info.get("duplicate_lines", []),
        }
        for info in infos
    }
    has_train = train_moments.n > 0
    extra: dict = {}
    if low:  # present only when there is something to say
        extra["warnings"] = [
            f"{coin}: gaps leave {share:.1%} of its rows usable as examples "
            f"(less than warn_usable_fraction {warn_usable_fraction:g}): each gap restarts "
            f"the {HISTORY_DAYS}-day warm-up"
            for coin, share in low.items()
        ]
        extra["low_usable_coins"] = low
    return {
        "feature_names": list(FEATURE_NAMES),
        "target_name": TARGET_NAME,
        "dtypes": dict.fromkeys(STAT_COLUMNS, STAT_DTYPE),
        "mean": dict(train_moments.mean) if has_train else {},
        "std": train_moments.std() if has_train else {},
        "splits": splits,
        "coins": coins,
        "input_rows": input_rows,
        "accepted_rows": accepted_rows,
        "rejected_rows": rejected_rows,
        "blank_lines": blank_lines,
        "rejected_reasons": dict(sorted(rejected_reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "coins_in_input": dict(sorted(coins_in_input.items())),
        "split_fractions": list(split_fractions),
        "input": input_path,
        **extra,
    }


def low_usable_coins(infos: Iterable[Mapping], threshold: float) -> dict[str, float]:
    """``{coin: share}`` of the coins whose examples are fewer than ``threshold`` of what a
    gap-free history as long would give (coins too short to have any are left out)."""
    low = {}
    for info in infos:
        ideal = info.get("ideal_examples", 0)
        if ideal and info["examples"] / ideal < threshold:
            low[info["coin"]] = info["examples"] / ideal
    return dict(sorted(low.items()))
