"""Read the transform's output: the features directory (CSV shards per split) and
stats.json, into float32 arrays. See components/README.md for the contract."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.contracts import SHARD_COLUMNS, SPLITS, STATS_FAILED_KEY, shard_glob
from components.common.features import FEATURE_NAMES, TARGET_NAME
from components.common.jsonfile import read_json


class DataContractError(ValueError):
    """The features directory or stats.json does not match the transform's contract."""


@dataclass(frozen=True)
class Split:
    """One split: raw features (float32, keyed by name), target log return (float32),
    today's close (float64, for price metrics), dates and coins (row order kept)."""

    name: str
    features: dict[str, np.ndarray]
    target: np.ndarray
    close: np.ndarray
    dates: np.ndarray
    coins: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def next_close(self) -> np.ndarray:
        """The actual next-day close: close · exp(target)."""
        return self.close * np.exp(self.target.astype(np.float64))


@dataclass(frozen=True)
class Stats:
    """The train-only normalisation statistics from stats.json."""

    mean: dict[str, float]
    std: dict[str, float]
    raw: dict

    @property
    def target_mean(self) -> float:
        return self.mean[TARGET_NAME]

    @property
    def target_std(self) -> float:
        return self.std[TARGET_NAME]


def load_stats(path: str | os.PathLike) -> Stats:
    """Read and validate stats.json (feature names, target name, mean and positive std)."""
    raw = read_json(path, "stats", DataContractError)
    if isinstance(raw, dict) and raw.get(STATS_FAILED_KEY):
        raise DataContractError(
            f"stats file {path} is from a transform that did not succeed "
            f"({raw[STATS_FAILED_KEY]}); run the transform again"
        )
    names = raw.get("feature_names")
    if names is None or tuple(names) != FEATURE_NAMES:
        raise DataContractError(
            f"stats file {path}: feature_names {names!r} do not match this code's "
            f"FEATURE_NAMES {list(FEATURE_NAMES)!r} (transform and train from different versions?)"
        )
    if raw.get("target_name", TARGET_NAME) != TARGET_NAME:
        raise DataContractError(
            f"stats file {path}: target_name is {raw.get('target_name')!r}, "
            f"expected {TARGET_NAME!r}"
        )
    mean, std = raw.get("mean", {}), raw.get("std", {})
    for col in (*FEATURE_NAMES, TARGET_NAME):
        if col not in mean or col not in std:
            raise DataContractError(f"stats file {path}: no mean/std for {col!r}")
        if not np.isfinite(mean[col]) or not np.isfinite(std[col]) or std[col] <= 0:
            raise DataContractError(
                f"stats file {path}: {col!r} needs a finite mean and a positive std, "
                f"got mean={mean[col]!r} std={std[col]!r}"
            )
    return Stats(
        mean={k: float(mean[k]) for k in (*FEATURE_NAMES, TARGET_NAME)},
        std={k: float(std[k]) for k in (*FEATURE_NAMES, TARGET_NAME)},
        raw=raw,
    )


def _read_shard(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"coin": str, "date": str})
    columns = tuple(frame.columns)
    if columns != SHARD_COLUMNS:
        missing = [c for c in SHARD_COLUMNS if c not in columns]
        extra = [c for c in columns if c not in SHARD_COLUMNS]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"unexpected {extra}")
        if not detail:
            detail.append("columns out of order")
        raise DataContractError(
            f"{path.name}: header does not match the features contract ({'; '.join(detail)}). "
            f"Expected: {','.join(SHARD_COLUMNS)}"
        )
    return frame


def load_split(features_dir: str | os.PathLike, split: str) -> Split:
    """Read every ``<split>-*.csv`` shard of ``features_dir``, sorted by date then coin."""
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise DataContractError(f"features directory not found: {features_dir}")
    shards = sorted(features_dir.glob(shard_glob(split)))
    if not shards:
        raise DataContractError(f"no '{split}-*.csv' shards in {features_dir}")
    frame = pd.concat([_read_shard(p) for p in shards], ignore_index=True)
    if frame.empty:
        raise DataContractError(f"the {split} split in {features_dir} has no rows")
    frame = frame.sort_values(["date", "coin"], kind="stable").reset_index(drop=True)
    numeric = frame[["close", *FEATURE_NAMES, TARGET_NAME]]
    bad = ~np.isfinite(numeric.to_numpy(dtype=np.float64)).all(axis=1)
    if bad.any():
        first = frame.loc[bad].iloc[0]
        raise DataContractError(
            f"the {split} split has {int(bad.sum())} row(s) with non-finite values "
            f"(first: {first['coin']} {first['date']})"
        )
    return Split(
        name=split,
        features={n: frame[n].to_numpy(dtype=np.float32) for n in FEATURE_NAMES},
        target=frame[TARGET_NAME].to_numpy(dtype=np.float32),
        close=frame["close"].to_numpy(dtype=np.float64),
        dates=frame["date"].to_numpy(dtype=str),
        coins=frame["coin"].to_numpy(dtype=str),
    )


def load_splits(
    features_dir: str | os.PathLike, splits: tuple[str, ...] = SPLITS
) -> dict[str, Split]:
    return {s: load_split(features_dir, s) for s in splits}
