"""Price metrics on the test split, for the model and the persistence baseline
(tomorrow's close = today's close). Pure numpy."""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES: tuple[str, ...] = ("mae", "rmse", "mape", "directional_accuracy")


def price_metrics(
    today: np.ndarray, actual_next: np.ndarray, predicted_next: np.ndarray
) -> dict[str, float]:
    """MAE, RMSE, MAPE (percent of the actual next close) and directional accuracy.

    Directional accuracy is the share of days where the predicted move
    ``sign(predicted_next - today)`` equals the actual move; "no change" is its own
    direction, so a forecast of no change (persistence) scores only on flat days.
    """
    today = np.asarray(today, dtype=np.float64)
    actual_next = np.asarray(actual_next, dtype=np.float64)
    predicted_next = np.asarray(predicted_next, dtype=np.float64)
    if not (today.shape == actual_next.shape == predicted_next.shape) or today.ndim != 1:
        raise ValueError("today, actual_next and predicted_next must be 1-D arrays of one length")
    if today.size == 0:
        raise ValueError("no rows to evaluate")
    error = predicted_next - actual_next
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(100.0 * np.mean(np.abs(error) / np.abs(actual_next))),
        "directional_accuracy": float(
            np.mean(np.sign(predicted_next - today) == np.sign(actual_next - today))
        ),
    }


def ratio(model_mae: float, baseline_mae: float) -> float:
    """model MAE / baseline MAE; a perfect baseline gives 1.0 for a perfect model, else inf."""
    if baseline_mae > 0:
        return model_mae / baseline_mae
    return 1.0 if model_mae == 0 else math.inf


def evaluate(
    today: np.ndarray, actual_log_return: np.ndarray, predicted_log_return: np.ndarray
) -> dict:
    """``{"model": {...}, "baseline": {...}, "mae_ratio": float}`` for next-day close prices
    ``today · exp(log_return)``."""
    today = np.asarray(today, dtype=np.float64)
    actual_next = today * np.exp(np.asarray(actual_log_return, dtype=np.float64))
    predicted_next = today * np.exp(np.asarray(predicted_log_return, dtype=np.float64))
    model = price_metrics(today, actual_next, predicted_next)
    baseline = price_metrics(today, actual_next, today)
    return {"model": model, "baseline": baseline, "mae_ratio": ratio(model["mae"], baseline["mae"])}


def flat_metrics(result: dict) -> dict[str, float]:
    """``model_mae``, ``baseline_mae``, ..., ``mae_ratio``: one level, for KFP Metrics."""
    out = {
        f"{who}_{name}": result[who][name] for who in ("model", "baseline") for name in METRIC_NAMES
    }
    out["mae_ratio"] = result["mae_ratio"]
    return out
