"""The pinball gate (``gate.decide_quantile``): each condition alone stops the deploy and
its reason names the figure and the threshold; all of them met deploys."""

from __future__ import annotations

import pytest

from components.train.gate import OUTCOMES, DieboldMariano, decide_quantile

SIGNIFICANT = DieboldMariano(statistic=-2.5, p_value=0.01, n=265)
NOT_SIGNIFICANT = DieboldMariano(statistic=-0.8, p_value=0.21, n=265)
#: A challenger that meets every condition against the baseline.
GOOD = {"pinball_ratio": 0.97, "dm_baseline": SIGNIFICANT, "coverage": 0.89}


def decide(**overrides):
    return decide_quantile(**{**GOOD, **overrides})


def test_all_conditions_met_without_a_champion_deploys():
    d = decide()
    assert d.deploy and d.outcome == "no-champion-passed"
    assert d.reason == (
        "deploy: no champion yet; pinball_ratio 0.9700 against historical quantiles, "
        "DM p 0.010; 90% coverage 0.890"
    )


@pytest.mark.parametrize("ratio", [1.0, 1.02])
def test_pinball_not_below_the_baseline_stops_it(ratio):
    d = decide(pinball_ratio=ratio)
    assert not d.deploy and d.outcome == "not-better-than-baseline"
    assert d.reason == (
        f"not deployed: pinball loss not below historical quantiles: pinball_ratio "
        f"{ratio:.4f} ({ratio - 1:+.2%}, must be < 1)"
    )
    assert "+2.00%" in decide(pinball_ratio=1.02).reason


def test_better_but_not_significant_stops_it():
    d = decide(dm_baseline=NOT_SIGNIFICANT)
    assert not d.deploy and d.outcome == "not-better-than-baseline"
    assert d.reason == (
        "not deployed: better than historical quantiles (pinball_ratio 0.9700) but not "
        "significantly: DM p 0.210 >= significance 0.05"
    )
    # The threshold is the parameter's: p 0.21 passes at significance 0.25.
    assert decide(dm_baseline=NOT_SIGNIFICANT, significance=0.25).deploy
    # p equal to the significance is not below it.
    at = DieboldMariano(-1.7, 0.05, 265)
    assert "DM p 0.050 >= significance 0.05" in decide(dm_baseline=at).reason


@pytest.mark.parametrize(
    ("coverage", "words"),
    [
        (0.80, "90% coverage 0.800 is 0.100 below 0.90 (coverage_tolerance 0.05)"),
        (0.97, "90% coverage 0.970 is 0.070 above 0.90 (coverage_tolerance 0.05)"),
    ],
)
def test_coverage_too_low_or_too_high_stops_it(coverage, words):
    d = decide(coverage=coverage)
    assert not d.deploy and d.outcome == "miscalibrated"
    assert d.reason == f"not deployed: {words}"


def test_coverage_within_the_tolerance_passes_on_both_edges():
    for coverage in (0.85, 0.95, 0.90):
        assert decide(coverage=coverage).deploy, coverage
    assert not decide(coverage=0.849).deploy
    assert not decide(coverage=0.951).deploy
    d = decide(coverage=0.84, coverage_tolerance=0.1)
    assert d.deploy
    narrow = decide(coverage=0.88, coverage_tolerance=0.01)
    assert narrow.reason.endswith(
        "90% coverage 0.880 is 0.020 below 0.90 (coverage_tolerance 0.01)"
    )


def test_every_failed_condition_is_named():
    d = decide(pinball_ratio=1.05, coverage=0.7)
    assert not d.deploy and d.outcome == "not-better-than-baseline"
    assert d.reason == (
        "not deployed: pinball loss not below historical quantiles: pinball_ratio 1.0500 "
        "(+5.00%, must be < 1); 90% coverage 0.700 is 0.200 below 0.90 "
        "(coverage_tolerance 0.05)"
    )


def test_the_baseline_label_is_the_callers():
    d = decide(pinball_ratio=1.1, baseline_label="GARCH(1,1)-t")
    assert "pinball loss not below GARCH(1,1)-t" in d.reason


CHAMPION = {"champion_version": "7", "champion_pinball_ratio": 0.95, "dm_champion": SIGNIFICANT}


def test_beating_the_baseline_and_the_champion_significantly_deploys():
    d = decide(**CHAMPION)
    assert d.deploy and d.outcome == "beats-both"
    assert d.reason == (
        "deploy: pinball_ratio 0.9700 against historical quantiles, DM p 0.010; "
        "90% coverage 0.890; pinball loss +5.00% against champion 7 (min_improvement "
        "0.00%); Diebold-Mariano DM* -2.50, p 0.010"
    )


@pytest.mark.parametrize(
    ("champion_ratio", "min_improvement", "words"),
    [
        (1.01, 0.0, "pinball loss -1.00% against champion 7 (min_improvement 0.00%)"),
        (1.0, 0.0, "pinball loss +0.00% against champion 7 (min_improvement 0.00%)"),
        (0.995, 0.01, "pinball loss +0.50% against champion 7 (min_improvement 1.00%)"),
    ],
)
def test_a_champion_not_beaten_by_enough_stops_it(champion_ratio, min_improvement, words):
    d = decide(
        **{**CHAMPION, "champion_pinball_ratio": champion_ratio},
        min_improvement=min_improvement,
    )
    assert not d.deploy and d.outcome == "not-better-than-champion"
    assert d.reason == (
        "not deployed: pinball_ratio 0.9700 against historical quantiles, DM p 0.010; "
        f"90% coverage 0.890, but {words}"
    )


def test_a_champion_beaten_but_not_significantly_stops_it():
    d = decide(**{**CHAMPION, "dm_champion": NOT_SIGNIFICANT})
    assert not d.deploy and d.outcome == "not-significant"
    assert d.reason == (
        "not deployed: pinball loss +5.00% against champion 7 (min_improvement 0.00%), "
        "but not significant: Diebold-Mariano DM* -0.80, p 0.210 >= significance 0.05"
    )


def test_an_identical_challenger_is_never_deployed_again():
    d = decide(**CHAMPION, identical=True)
    assert not d.deploy and d.outcome == "identical-to-champion"
    assert "identical to champion version 7" in d.reason
    # Identity without a champion means nothing.
    assert decide(identical=True).deploy


def test_the_baseline_conditions_come_before_the_champion():
    d = decide(**CHAMPION, coverage=0.5)
    assert not d.deploy and d.outcome == "miscalibrated"
    assert "champion" not in d.reason


def test_a_champion_needs_its_figures():
    with pytest.raises(ValueError, match="its pinball loss ratio and the Diebold-Mariano test"):
        decide(champion_version="7")


def test_every_outcome_is_declared():
    outcomes = {
        decide().outcome,
        decide(pinball_ratio=1.2).outcome,
        decide(coverage=0.5).outcome,
        decide(**CHAMPION).outcome,
        decide(**{**CHAMPION, "champion_pinball_ratio": 1.1}).outcome,
        decide(**{**CHAMPION, "dm_champion": NOT_SIGNIFICANT}).outcome,
        decide(**CHAMPION, identical=True).outcome,
    }
    assert len(outcomes) == 7 and outcomes <= set(OUTCOMES)
