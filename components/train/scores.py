"""Scores of quantile forecasts: pinball loss, interval coverage and width.

The proper scores come from ``scoringrules`` (``quantile_score`` is the pinball loss of
one level; ``interval_score`` the Gneiting-Raftery score of a central interval); coverage
and width are counts and differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from components.common.quantiles import INTERVALS


def pinball_per_day(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]):
    """The pinball loss of each row, averaged over the levels: ``[rows]``."""
    import scoringrules as sr

    actual = np.asarray(actual, dtype=np.float64)
    quantiles = np.asarray(quantiles, dtype=np.float64)
    if quantiles.shape != (len(actual), len(levels)):
        raise ValueError(
            f"quantiles of shape {quantiles.shape}, expected {(len(actual), len(levels))}"
        )
    per_level = [
        np.asarray(sr.quantile_score(actual, quantiles[:, k], level), dtype=np.float64)
        for k, level in enumerate(levels)
    ]
    return np.mean(per_level, axis=0)


def quantile_scores(
    actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]
) -> dict[str, float]:
    """``pinball`` (mean over rows and levels), and for each central interval whose two
    levels are forecast (``INTERVALS``): ``coverage_<p>`` (share of rows inside, bounds
    included), ``width_<p>`` (mean width in log-return units, about the relative price
    width) and ``interval_score_<p>``; ``crossings`` counts rows whose quantiles decrease
    somewhere (0 for the model by construction)."""
    import scoringrules as sr

    actual = np.asarray(actual, dtype=np.float64)
    quantiles = np.asarray(quantiles, dtype=np.float64)
    out = {"pinball": float(np.mean(pinball_per_day(actual, quantiles, levels)))}
    levels = [float(v) for v in levels]
    for name, (lower, upper) in INTERVALS.items():
        if lower in levels and upper in levels:
            lo, hi = quantiles[:, levels.index(lower)], quantiles[:, levels.index(upper)]
            out[f"coverage_{name}"] = float(np.mean((actual >= lo) & (actual <= hi)))
            out[f"width_{name}"] = float(np.mean(hi - lo))
            alpha = 1.0 - (upper - lower)
            out[f"interval_score_{name}"] = float(np.mean(sr.interval_score(actual, lo, hi, alpha)))
    out["crossings"] = float(np.sum(np.any(np.diff(quantiles, axis=1) < 0, axis=1)))
    return out


def calibration(
    actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]
) -> dict[str, float]:
    """Observed share of rows at or below each quantile: ``{level: share}`` (a calibrated
    forecast has share ≈ level)."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1, 1)
    shares = np.mean(actual <= np.asarray(quantiles, dtype=np.float64), axis=0)
    return {repr(float(level)): float(s) for level, s in zip(levels, shares, strict=True)}


def against_baselines(
    actual: np.ndarray,
    model: np.ndarray,
    baselines: dict,
    levels: Sequence[float],
) -> dict:
    """The model's quantile scores beside each available baseline's, on the same rows:
    ``{"model": scores, "<baseline>": scores, "pinball": {who: per-day losses},
    "ratio": {baseline: model pinball / baseline pinball}, "dm": {baseline: DM test of
    the per-day pinball losses (one-sided: the model's are smaller)}}``. An unavailable
    baseline (``quantiles`` None) is left out of everything but ``"unavailable"``."""
    from components.train.evaluate import ratio
    from components.train.gate import diebold_mariano

    out: dict = {
        "model": quantile_scores(actual, model, levels),
        "pinball": {"model": pinball_per_day(actual, model, levels)},
        "ratio": {},
        "dm": {},
        "unavailable": {},
    }
    for name, baseline in baselines.items():
        if baseline.quantiles is None:
            out["unavailable"][name] = baseline.note
            continue
        out[name] = quantile_scores(actual, baseline.quantiles, levels)
        out["pinball"][name] = pinball_per_day(actual, baseline.quantiles, levels)
        out["ratio"][name] = ratio(out["model"]["pinball"], out[name]["pinball"])
        # Pinball losses are non-negative: the test's absolute value leaves them as they are.
        out["dm"][name] = diebold_mariano(out["pinball"]["model"], out["pinball"][name])
    return out


def flat_quantile_metrics(comparison: dict) -> dict[str, float]:
    """One level of numbers for KFP Metrics: ``model_pinball``, ``model_coverage_90``, ...,
    ``historical_pinball``, ``pinball_ratio`` (against historical quantiles),
    ``garch_pinball_ratio``, ``dm_historical_p_value``, ``garch_available``."""
    out: dict[str, float] = {}
    for who in ("model", "historical", "garch"):
        for name, value in comparison.get(who, {}).items():
            out[f"{who}_{name}"] = float(value)
    for name, value in comparison["ratio"].items():
        out["pinball_ratio" if name == "historical" else f"{name}_pinball_ratio"] = float(value)
    for name, test in comparison["dm"].items():
        out[f"dm_{name}_statistic"] = float(test.statistic)
        out[f"dm_{name}_p_value"] = float(test.p_value)
    out["garch_available"] = float("garch" not in comparison["unavailable"])
    return out
