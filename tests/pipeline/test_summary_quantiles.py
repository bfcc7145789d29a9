"""The run summary's quantile line: a fixed format, right after the MAE line, with GARCH
marked unavailable (and why, when the train step recorded it) when it could not be fitted."""

from components.images import STEPS
from pipeline.local import LocalRunResult, StepRecord, classify_deploy
from pipeline.summary import format_summary

METRICS = {
    "model_mae": 101.0,
    "baseline_mae": 102.0,
    "mae_ratio": 0.99,
    "model_pinball": 0.0123,
    "historical_pinball": 0.0127,
    "pinball_ratio": 0.97123,
    "dm_historical_p_value": 0.0123,
    "garch_pinball": 0.0125,
    "garch_pinball_ratio": 0.98456,
    "dm_garch_p_value": 0.21,
    "garch_available": 1.0,
    "model_coverage_90": 0.8912,
}


def _summary(metrics: dict, model_metadata: dict | None = None) -> list[str]:
    steps = {step: StepRecord(step, "SUCCEEDED", 1.0) for step in STEPS}
    steps["deploy"] = StepRecord("deploy")
    outputs = {
        "train": {
            "Output": False,
            "metrics": {"uri": "m", "metadata": metrics},
            "model": {"uri": "model", "metadata": model_metadata or {}},
        }
    }
    classify_deploy(steps, outputs)
    result = LocalRunResult(None, steps, outputs, {"max_mae_ratio": 1.0}, 5.0)
    return format_summary(result).splitlines()


def test_the_quantile_line_follows_the_mae_line_in_the_fixed_format():
    lines = _summary(METRICS)
    mae = next(i for i, line in enumerate(lines) if line.startswith("Against persistence:"))
    assert lines[mae + 1] == (
        "Against historical quantiles: pinball_ratio 0.9712, DM p 0.012; "
        "against GARCH(1,1)-t: pinball_ratio 0.9846, DM p 0.210; 90% coverage 0.891"
    )
    assert not any("unavailable" in line for line in lines)


def test_an_unavailable_garch_is_said_with_its_reason():
    failed = {k: v for k, v in METRICS.items() if not k.startswith(("garch_", "dm_garch"))}
    reason = "GARCH(1,1)-t fit failed for bitcoin: the optimizer did not converge"
    lines = _summary({**failed, "garch_available": 0.0}, {"garch_unavailable": reason})
    mae = next(i for i, line in enumerate(lines) if line.startswith("Against persistence:"))
    assert lines[mae + 1] == (
        "Against historical quantiles: pinball_ratio 0.9712, DM p 0.012; "
        "against GARCH(1,1)-t: unavailable; 90% coverage 0.891"
    )
    assert lines[mae + 2] == f"GARCH(1,1)-t baseline unavailable: {reason}"
    # Without a recorded reason the line still says so, and where to look.
    lines = _summary({**failed, "garch_available": 0.0})
    assert "GARCH(1,1)-t baseline unavailable (see the report)" in lines


def test_a_point_forecast_run_has_no_quantile_line():
    lines = _summary({"model_mae": 101.0, "baseline_mae": 102.0, "mae_ratio": 0.99})
    assert not any(line.startswith("Against historical quantiles") for line in lines)
