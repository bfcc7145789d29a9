"""Small contract-conformant transform outputs, built without Beam.

A synthetic daily series (a drifting random walk with a weak AR(1) term in the returns,
so there is a little to learn) goes through ``features.feature_frame``; the rows are
split by date 70/15/15 and written as CSV shards with a ``stats.json`` whose mean/std
come from the train split only, as components/README.md specifies.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.features import (
    FEATURE_NAMES,
    HISTORY_COLUMNS,
    TARGET_NAME,
    Bar,
    feature_frame,
)

COLUMNS = ["coin", "date", "close", *FEATURE_NAMES, TARGET_NAME]


def synthetic_bars(days: int, seed: int = 0, start: dt.date = dt.date(2015, 1, 1)) -> list[Bar]:
    rng = np.random.default_rng(seed)
    returns = np.zeros(days)
    for i in range(1, days):
        returns[i] = 0.001 + 0.2 * returns[i - 1] + rng.normal(0, 0.02)
    close = 100.0 * np.exp(np.cumsum(returns))
    bars = []
    for i in range(days):
        open_ = close[i - 1] if i else close[0]
        spread = abs(rng.normal(0, 0.01)) + 0.002
        bars.append(
            Bar(
                date=start + dt.timedelta(days=i),
                open=float(open_),
                high=float(max(open_, close[i]) * (1 + spread)),
                low=float(min(open_, close[i]) * (1 - spread)),
                close=float(close[i]),
                volume=float(rng.uniform(1e6, 2e6)),
            )
        )
    return bars


def write_features(
    out_dir: Path, days: int = 400, seed: int = 0, shards: int = 1
) -> tuple[Path, Path]:
    """Write ``out_dir/features/{train,eval,test}-*.csv`` and ``out_dir/stats.json``."""
    bars = synthetic_bars(days, seed)
    history = pd.DataFrame({c: [getattr(b, c) for b in bars] for c in HISTORY_COLUMNS})
    frame = feature_frame(history)
    frame = frame[frame[TARGET_NAME].notna()].reset_index(drop=True)
    frame.insert(0, "coin", "bitcoin")
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    n = len(frame)
    bounds = {
        "train": (0, int(n * 0.7)),
        "eval": (int(n * 0.7), int(n * 0.85)),
        "test": (int(n * 0.85), n),
    }
    features_dir = Path(out_dir) / "features"
    features_dir.mkdir(parents=True, exist_ok=True)
    train = frame.iloc[slice(*bounds["train"])]
    columns = [*FEATURE_NAMES, TARGET_NAME]
    std = train[columns].std(ddof=0).replace(0.0, 1.0)
    stats = {
        "feature_names": list(FEATURE_NAMES),
        "target_name": TARGET_NAME,
        "dtypes": {c: "float32" for c in columns},
        "mean": {c: float(train[c].mean()) for c in columns},
        "std": {c: float(std[c]) for c in columns},
        "splits": {},
        "coins": {"bitcoin": {}},
    }
    for split, (lo, hi) in bounds.items():
        part = frame.iloc[lo:hi]
        stats["splits"][split] = {
            "rows": len(part),
            "start": part["date"].iloc[0],
            "end": part["date"].iloc[-1],
        }
        stats["coins"]["bitcoin"][split] = len(part)
        for k, idx in enumerate(np.array_split(np.arange(len(part)), shards)):
            part.iloc[idx][COLUMNS].to_csv(
                features_dir / f"{split}-{k:05d}-of-{shards:05d}.csv",
                index=False,
                float_format="%.17g",
            )
    stats_path = Path(out_dir) / "stats.json"
    stats_path.write_text(json.dumps(stats, indent=1))
    return features_dir, stats_path
