"""The run summary says what the champion/challenger gate decided, and that a skipped
deploy deployed nothing."""

from components.images import STEPS
from pipeline.local import LocalRunResult, StepRecord, classify_deploy
from pipeline.summary import format_summary

REASON = (
    "not deployed: the challenger is identical to champion version 202612010000000001 "
    "(same data SHA-256, same hyper-parameters and seed); nothing to replace"
)


def _result(passed: bool, metrics: dict, model_metadata: dict) -> LocalRunResult:
    steps = {step: StepRecord(step, "SUCCEEDED", 1.0) for step in STEPS}
    steps["deploy"] = StepRecord("deploy")  # NOT RUN until classified
    outputs = {
        "train": {
            "Output": passed,
            "metrics": {"uri": "m", "metadata": metrics},
            "model": {"uri": "model", "metadata": model_metadata},
        }
    }
    classify_deploy(steps, outputs)
    return LocalRunResult(None, steps, outputs, {"max_mae_ratio": 1.0}, 5.0)


def test_identical_rerun_says_nothing_was_deployed_and_why():
    metrics = {
        "model_mae": 101.0,
        "baseline_mae": 102.0,
        "mae_ratio": 0.99,
        "champion_mae": 101.0,
        "champion_mae_ratio": 1.0,
        "dm_champion_statistic": 0.0,
        "dm_champion_p_value": 0.5,
    }
    text = format_summary(
        _result(False, metrics, {"gate_reason": REASON, "champion_version": "202612010000000001"})
    )
    assert "deploy     SKIPPED" in text
    assert f"Gate decision: {REASON}" in text
    # The persistence comparison passed; the gate line must not read as if it had failed.
    assert "Against persistence: mae_ratio 0.9900 <= max_mae_ratio 1.0000 (beats it)" in text
    assert "Gate: NOT PASSED; the model was NOT deployed." in text
    assert "Deploy: skipped, nothing deployed; the repository's CURRENT and deployment " in text
    assert "Champion 202612010000000001: test MAE 101.00, challenger/champion MAE 1.0000" in text
    assert "Diebold-Mariano DM* 0.0000 (p 0.5000)" in text


def test_first_run_shows_the_reason_without_a_champion():
    reason = "deploy: no champion yet, persistence decides: mae_ratio 0.9900 (max 1)"
    steps = _result(True, {"mae_ratio": 0.99}, {"gate_reason": reason})
    steps.steps["deploy"] = StepRecord("deploy", "SUCCEEDED", 1.0)
    text = format_summary(steps)
    assert "Gate: PASSED" in text and f"Gate decision: {reason}" in text
    assert "Against persistence: mae_ratio 0.9900 <= max_mae_ratio 1.0000" in text
    assert "Champion" not in text and "skipped" not in text
