"""Price metrics on a hand-made series, values computed by hand."""

import math

import numpy as np
import pytest

from components.train.evaluate import evaluate, flat_metrics, price_metrics, ratio

TODAY = np.array([100.0, 110.0, 100.0, 100.0])
ACTUAL_NEXT = np.array([110.0, 99.0, 100.0, 105.0])  # up, down, flat, up
PREDICTED_NEXT = np.array([105.0, 100.0, 101.0, 104.0])  # up, down, up, up


def test_model_metrics_by_hand():
    m = price_metrics(TODAY, ACTUAL_NEXT, PREDICTED_NEXT)
    # errors: -5, +1, +1, -1
    assert m["mae"] == pytest.approx(2.0)
    assert m["rmse"] == pytest.approx(math.sqrt(28 / 4))
    assert m["mape"] == pytest.approx(100 * (5 / 110 + 1 / 99 + 1 / 100 + 1 / 105) / 4)
    assert m["directional_accuracy"] == pytest.approx(0.75)  # wrong only on the flat day


def test_persistence_baseline_by_hand():
    b = price_metrics(TODAY, ACTUAL_NEXT, TODAY)
    # errors: -10, +11, 0, -5
    assert b["mae"] == pytest.approx(6.5)
    assert b["rmse"] == pytest.approx(math.sqrt(246 / 4))
    assert b["mape"] == pytest.approx(100 * (10 / 110 + 11 / 99 + 0 + 5 / 105) / 4)
    assert b["directional_accuracy"] == pytest.approx(0.25)  # "no change" matches the flat day only


def test_evaluate_from_log_returns():
    result = evaluate(TODAY, np.log(ACTUAL_NEXT / TODAY), np.log(PREDICTED_NEXT / TODAY))
    assert result["model"]["mae"] == pytest.approx(2.0)
    assert result["baseline"]["mae"] == pytest.approx(6.5)
    assert result["mae_ratio"] == pytest.approx(2.0 / 6.5)
    flat = flat_metrics(result)
    assert flat["model_rmse"] == pytest.approx(math.sqrt(7))
    assert flat["baseline_directional_accuracy"] == pytest.approx(0.25)
    assert set(flat) == {
        f"{w}_{n}" for w in ("model", "baseline") for n in ("mae", "rmse", "mape", "directional_accuracy")
    } | {"mae_ratio"}


def test_zero_log_return_is_persistence():
    result = evaluate(TODAY, np.log(ACTUAL_NEXT / TODAY), np.zeros(4))
    assert result["mae_ratio"] == pytest.approx(1.0)
    assert result["model"] == pytest.approx(result["baseline"])


def test_ratio_with_a_perfect_baseline():
    assert ratio(0.0, 0.0) == 1.0
    assert ratio(1.0, 0.0) == math.inf


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        price_metrics(TODAY, ACTUAL_NEXT[:3], PREDICTED_NEXT)
    with pytest.raises(ValueError, match="no rows"):
        price_metrics(np.array([]), np.array([]), np.array([]))
