"""Quantile scores (components.train.scores) on small arrays, values computed by hand.

Levels 0.05, 0.25, 0.5, 0.75, 0.95. The pinball loss of level ``tau`` for the outcome
``y`` and the quantile ``q`` is ``max(tau (y - q), (tau - 1) (y - q))``; the interval score
of a central ``1 - alpha`` interval ``[l, u]`` is ``(u - l) + 2/alpha (l - y)`` below it,
``(u - l)`` inside and ``(u - l) + 2/alpha (y - u)`` above it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.train.baselines import Baseline
from components.train.gate import diebold_mariano
from components.train.scores import (
    against_baselines,
    calibration,
    flat_quantile_metrics,
    pinball_per_day,
    quantile_scores,
)

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
ACTUAL = np.array([0.0, 1.5, -3.0, 2.0])
#: Rows 1-3 the same quantiles, row 4 twice as wide.
MODEL = np.array(
    [
        [-2.0, -1.0, 0.0, 1.0, 2.0],
        [-2.0, -1.0, 0.0, 1.0, 2.0],
        [-2.0, -1.0, 0.0, 1.0, 2.0],
        [-4.0, -2.0, 0.0, 2.0, 4.0],
    ]
)
#: Every row -2 -1 0 1 2.
FLAT = np.tile([-2.0, -1.0, 0.0, 1.0, 2.0], (4, 1))


def test_pinball_per_day_by_hand():
    # Row 1, y = 0:    0.05·2 + 0.25·1 + 0 + 0.25·1 + 0.05·2       = 0.70 -> 0.14
    # Row 2, y = 1.5:  0.05·3.5 + 0.25·2.5 + 0.5·1.5 + 0.75·0.5 + 0.05·0.5 = 1.95 -> 0.39
    # Row 3, y = -3:   0.95·1 + 0.75·2 + 0.5·3 + 0.25·4 + 0.05·5  = 5.20 -> 1.04
    # Row 4, y = 2:    0.05·6 + 0.25·4 + 0.5·2 + 0 + 0.05·2        = 2.40 -> 0.48
    got = pinball_per_day(ACTUAL, MODEL, LEVELS)
    np.testing.assert_allclose(got, [0.14, 0.39, 1.04, 0.48], rtol=1e-12)
    # The flat forecast's row 4 (y = 2 on its 0.95 quantile): 0.2 + 0.75 + 1 + 0.75 + 0
    np.testing.assert_allclose(
        pinball_per_day(ACTUAL, FLAT, LEVELS), [0.14, 0.39, 1.04, 0.54], rtol=1e-12
    )


def test_pinball_of_one_level_is_the_check_function():
    # Level 0.1: below the quantile costs 0.9 per unit, above it 0.1 per unit.
    got = pinball_per_day(np.array([1.0, -1.0, 0.5]), np.array([[0.0], [0.0], [0.5]]), [0.1])
    np.testing.assert_allclose(got, [0.1, 0.9, 0.0], rtol=1e-12)


def test_pinball_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(4, 4\), expected \(4, 5\)"):
        pinball_per_day(ACTUAL, MODEL[:, :4], LEVELS)


def test_quantile_scores_by_hand():
    s = quantile_scores(ACTUAL, MODEL, LEVELS)
    assert s["pinball"] == pytest.approx((0.14 + 0.39 + 1.04 + 0.48) / 4, rel=1e-12)
    # 50%: [-1, 1] holds 0, not 1.5, not -3; [-2, 2] holds 2 (bounds count as inside).
    assert s["coverage_50"] == 0.5
    # 90%: [-2, 2] holds 0 and 1.5, not -3; [-4, 4] holds 2.
    assert s["coverage_90"] == 0.75
    assert s["width_50"] == pytest.approx((2 + 2 + 2 + 4) / 4)
    assert s["width_90"] == pytest.approx((4 + 4 + 4 + 8) / 4)
    # alpha 0.5: 2, 2 + 4·0.5, 2 + 4·2, 4 -> 20 / 4
    assert s["interval_score_50"] == pytest.approx(5.0, rel=1e-12)
    # alpha 0.1: 4, 4, 4 + 20·1, 8 -> 40 / 4
    assert s["interval_score_90"] == pytest.approx(10.0, rel=1e-12)
    assert s["crossings"] == 0.0
    assert set(s) == {
        "pinball",
        "coverage_50",
        "width_50",
        "interval_score_50",
        "coverage_90",
        "width_90",
        "interval_score_90",
        "crossings",
    }


def test_an_interval_whose_levels_are_not_forecast_is_left_out():
    levels = (0.25, 0.5, 0.75)
    s = quantile_scores(ACTUAL, MODEL[:, 1:4], levels)
    assert s["coverage_50"] == 0.5 and "coverage_90" not in s and "width_90" not in s
    # Pinball over three levels: row 1 (0.25 + 0 + 0.25) / 3, row 2 (0.625 + 0.75 +
    # 0.375) / 3, row 3 (1.5 + 1.5 + 1) / 3, row 4 (1 + 1 + 0) / 3.
    assert s["pinball"] == pytest.approx((0.5 + 1.75 + 4 + 2) / 3 / 4, rel=1e-12)


def test_crossings_count_rows_whose_quantiles_decrease():
    crossed = MODEL.copy()
    crossed[1] = [-2.0, -1.0, 0.0, -1.5, 2.0]  # 0.75 below the median
    crossed[3] = [-4.0, -4.0, 0.0, 2.0, 4.0]  # equal quantiles do not cross
    assert quantile_scores(ACTUAL, crossed, LEVELS)["crossings"] == 1.0


def test_calibration_is_the_share_at_or_below_each_quantile():
    # 0.05: only -3 <= -2;  0.25: only -3;  0.5: 0 and -3 (0 <= 0);
    # 0.75: 0, -3 and 2 (2 <= 2);  0.95: all four.
    assert calibration(ACTUAL, MODEL, LEVELS) == {
        "0.05": 0.25,
        "0.25": 0.25,
        "0.5": 0.5,
        "0.75": 0.75,
        "0.95": 1.0,
    }


def test_against_baselines_ratios_and_diebold_mariano_by_hand():
    """Model minus flat per-day losses: d = 0 0 0 -0.06, T = 4. mean(d) = -0.015,
    gamma_0 = (3 · 0.015² + 0.045²) / 4 = 0.000675, DM = -0.015 / sqrt(0.000675 / 4)
    = -2/sqrt(3); HLN: DM* = DM · sqrt(3/4) = -1. With 3 degrees of freedom
    P(t <= -1) = 1/2 + (1/pi) (atan(-1/sqrt 3) - (1/sqrt 3) / (1 + 1/3))
    = 1/3 - sqrt(3) / (4 pi) = 0.195501."""
    baselines = {
        "historical": Baseline("historical", "historical quantiles (365 d)", FLAT),
        "garch": Baseline("garch", "GARCH(1,1)-t", None, "the optimiser did not converge"),
    }
    out = against_baselines(ACTUAL, MODEL, baselines, LEVELS)
    assert out["model"]["pinball"] == pytest.approx(2.05 / 4, rel=1e-12)
    assert out["historical"]["pinball"] == pytest.approx(2.11 / 4, rel=1e-12)
    assert out["ratio"] == {"historical": pytest.approx(2.05 / 2.11, rel=1e-12)}
    dm = out["dm"]["historical"]
    assert dm.n == 4
    assert dm.statistic == pytest.approx(-1.0, rel=1e-9)
    assert dm.p_value == pytest.approx(1 / 3 - math.sqrt(3) / (4 * math.pi), rel=1e-9)
    assert dm.p_value == pytest.approx(0.195501, abs=1e-6)
    assert dm == diebold_mariano(out["pinball"]["model"], out["pinball"]["historical"])
    np.testing.assert_allclose(out["pinball"]["model"], [0.14, 0.39, 1.04, 0.48], rtol=1e-12)
    # The failed baseline is only in "unavailable", with its note.
    assert "garch" not in out and "garch" not in out["ratio"] and "garch" not in out["dm"]
    assert out["unavailable"] == {"garch": "the optimiser did not converge"}


def test_flat_quantile_metrics_names_every_figure():
    baselines = {
        "historical": Baseline("historical", "historical", FLAT),
        "garch": Baseline("garch", "GARCH(1,1)-t", MODEL * 1.5),
    }
    out = against_baselines(ACTUAL, MODEL, baselines, LEVELS)
    flat = flat_quantile_metrics(out)
    assert flat["model_pinball"] == pytest.approx(2.05 / 4)
    assert flat["historical_pinball"] == pytest.approx(2.11 / 4)
    assert flat["pinball_ratio"] == pytest.approx(2.05 / 2.11)
    assert flat["garch_pinball_ratio"] == pytest.approx(
        out["model"]["pinball"] / out["garch"]["pinball"]
    )
    assert flat["model_coverage_90"] == 0.75 and flat["model_width_50"] == 2.5
    assert flat["historical_coverage_90"] == 0.75  # -3 is outside [-2, 2]
    assert flat["dm_historical_p_value"] == pytest.approx(0.195501, abs=1e-6)
    assert flat["dm_historical_statistic"] == pytest.approx(-1.0)
    assert flat["garch_available"] == 1.0
    assert all(isinstance(v, float) for v in flat.values())

    without = flat_quantile_metrics(
        against_baselines(
            ACTUAL, MODEL, {**baselines, "garch": Baseline("garch", "g", None, "x")}, LEVELS
        )
    )
    assert without["garch_available"] == 0.0
    assert not any(k.startswith("garch_") and k != "garch_available" for k in without)
    assert "dm_garch_p_value" not in without
