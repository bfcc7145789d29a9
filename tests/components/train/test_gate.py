"""The deploy gate without TensorFlow: the Diebold-Mariano test against a value computed
by hand, Student's t against its density, and the gate's outcomes with their summaries."""

import math

import numpy as np
import pytest

from components.train.gate import DieboldMariano, decide, diebold_mariano, student_t_cdf


def test_dm_statistic_equals_the_hand_computed_value():
    """|a| = 1 3 2 4 1 and |b| = 2 4 4 3 3, so d = |a| - |b| = -1 -1 -2 1 -2, T = 5:

    mean(d) = -1; d - mean = 0 0 -1 2 -1; gamma_0 = (0 + 0 + 1 + 4 + 1) / 5 = 6/5.
    DM = -1 / sqrt((6/5) / 5) = -5 / sqrt(6).
    HLN (h = 1): DM* = DM * sqrt((5 + 1 - 2) / 5) = -5/sqrt(6) * 2/sqrt(5) = -sqrt(10/3)
    = -1.825742.
    p = P(t_4 <= DM*): with cos^2(theta) = 1 / (1 + t^2/4) = 6/11, the two-sided
    A(t|4) = sin(theta) (1 + cos^2(theta) / 2) = sqrt(5/11) * 14/11, so
    p = (1 - 14/11 * sqrt(5/11)) / 2 = 0.070964.
    """
    # Signs of the errors do not matter: the test is on absolute errors.
    result = diebold_mariano([1, -3, 2, 4, -1], [-2, 4, 4, -3, 3])
    assert result.n == 5
    assert result.statistic == pytest.approx(-math.sqrt(10 / 3), rel=1e-12)
    assert result.p_value == pytest.approx((1 - 14 / 11 * math.sqrt(5 / 11)) / 2, rel=1e-12)
    assert result.p_value == pytest.approx(0.070964, abs=1e-6)


def test_dm_is_antisymmetric_and_handles_equal_forecasts():
    a, b = np.array([1.0, 3, 2, 4, 1]), np.array([2.0, 4, 4, 3, 3])
    forward, backward = diebold_mariano(a, b), diebold_mariano(b, a)
    assert backward.statistic == pytest.approx(-forward.statistic)
    assert backward.p_value == pytest.approx(1 - forward.p_value)
    same = diebold_mariano(a, a)
    assert same.statistic == 0.0 and same.p_value == 0.5
    always_better = diebold_mariano(a, a + 1)  # d = -1 every day: no spread
    assert always_better.statistic == -math.inf and always_better.p_value == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        diebold_mariano([1.0], [2.0])
    with pytest.raises(ValueError, match="one length"):
        diebold_mariano([1.0, 2.0], [2.0])


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 30, 251])
def test_student_t_cdf_agrees_with_the_integrated_density(df):
    x = np.linspace(-60, 2.5, 400_001)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_norm - (df + 1) / 2 * np.log1p(x**2 / df))
    integral = float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(x)))
    tail = student_t_cdf(-60.0, df)  # mass left of the grid
    assert student_t_cdf(2.5, df) == pytest.approx(integral + tail, abs=2e-6)
    assert student_t_cdf(0.0, df) == 0.5
    assert student_t_cdf(1.3, df) == pytest.approx(1 - student_t_cdf(-1.3, df), abs=1e-12)


def test_cauchy_cdf_is_exact():
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75, rel=1e-12)


SIGNIFICANT = DieboldMariano(-2.5, 0.01, 200)
NOT_SIGNIFICANT = DieboldMariano(-0.8, 0.21, 200)


def _decide(**kwargs):
    given = dict(
        mae_ratio=0.98,
        max_mae_ratio=1.0,
        champion_version="202601010000000001",
        champion_mae_ratio=0.95,
        dm_champion=SIGNIFICANT,
        min_improvement=0.02,
        significance=0.05,
    )
    return decide(**(given | kwargs))


def test_beats_both():
    decision = _decide()
    assert decision.deploy and decision.outcome == "beats-both"
    assert decision.reason.startswith("deploy: beats persistence (mae_ratio 0.9800")
    assert "MAE +5.00% against champion 202601010000000001" in decision.reason
    assert "p 0.010" in decision.reason


def test_beats_persistence_but_not_the_champion():
    for ratio in (1.01, 0.99):  # worse, and better but by less than min_improvement (2%)
        decision = _decide(champion_mae_ratio=ratio)
        assert not decision.deploy and decision.outcome == "not-better-than-champion"
        assert decision.reason.startswith("not deployed: beats persistence but MAE")
        assert "(min_improvement 2.00%)" in decision.reason


def test_better_than_the_champion_but_not_significant():
    decision = _decide(dm_champion=NOT_SIGNIFICANT)
    assert not decision.deploy and decision.outcome == "not-significant"
    assert "not significant: Diebold-Mariano DM* -0.80, p 0.210 >= significance 0.05" in (
        decision.reason
    )


def test_identical_model_is_not_deployed_again():
    decision = _decide(identical=True)
    assert not decision.deploy and decision.outcome == "identical-to-champion"
    assert "identical to champion version 202601010000000001" in decision.reason
    assert "same data SHA-256, same hyper-parameters and seed" in decision.reason


def test_worse_than_persistence_is_never_deployed():
    decision = _decide(mae_ratio=1.2)
    assert not decision.deploy and decision.outcome == "worse-than-persistence"
    assert "worse than persistence, mae_ratio 1.2000 (max 1)" in decision.reason


def test_no_champion_persistence_decides():
    passed = decide(mae_ratio=0.98, max_mae_ratio=1.0)
    assert passed.deploy and passed.outcome == "no-champion-passed"
    assert passed.reason == "deploy: no champion yet, persistence decides: mae_ratio 0.9800 (max 1)"
    failed = decide(mae_ratio=1.02, max_mae_ratio=1.0)
    assert not failed.deploy and failed.outcome == "no-champion-failed"


def test_bad_gate_settings_are_named_before_anything_runs():
    from components.train.parameters import check_parameters
    from pipeline.parameters import check_arguments

    problems = check_parameters(min_improvement=1.5, significance=0)
    assert problems == {
        "min_improvement": "min_improvement must be <= 0.99, got 1.5",
        "significance": "significance must be > 0, got 0",
    }
    assert check_parameters(min_improvement=0.0, significance=0.05) == {}
    assert check_arguments({"significance": 0.7, "min_improvement": -0.1}) == [
        "--min-improvement: min_improvement must be >= 0, got -0.1",
        "--significance: significance must be <= 0.5, got 0.7",
    ]


def test_verdict_lines_say_better_worse_or_level():
    from components.train.report import verdicts

    evaluation = {
        "model": {"mae": 95.0, "rmse": 130.0, "mape": 4.00001},
        "baseline": {"mae": 100.0, "rmse": 120.0, "mape": 4.0},
    }
    champion = {"mae": 90.0, "rmse": 140.0, "mape": 4.0}
    assert verdicts(evaluation, champion) == [
        "MAE 95: better than persistence (100, -5.00%); worse than the champion (90, +5.56%)",
        "RMSE 130: worse than persistence (120, +8.33%); better than the champion (140, -7.14%)",
        "MAPE 4: level with persistence (4); level with the champion (4)",
    ]
    assert verdicts(evaluation, None)[0].endswith("; no champion to compare with")


def test_the_training_fingerprint_changes_with_what_the_nets_were_fitted_to():
    from components.train.champion import training_fingerprint

    hparams = {"learning_rate": 0.003, "num_layers": 1}
    base = dict(seed=42, ensemble_size=5, splits={"test": ["2017-07-03", "2018-03-24", 265]})
    same = training_fingerprint(dict(reversed(list(hparams.items()))), **base)
    assert training_fingerprint(hparams, **base) == same  # key order does not matter
    for changed in (
        {"seed": 43},
        {"ensemble_size": 4},
        {"splits": {"test": ["2017-07-04", "2018-03-24", 264]}},
        {"coins": ["bitcoin", "ethereum"]},
    ):
        assert training_fingerprint(hparams, **(base | changed)) != same, changed
    assert training_fingerprint({**hparams, "dropout": 0.1}, **base) != same
