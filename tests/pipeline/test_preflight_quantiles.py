"""Bad ``quantile_levels`` are refused before anything runs, naming --quantile-levels: by
the pipeline's preflight (``check_arguments``: run-local, submit and schedule call it on the
compiled pipeline's arguments) and by ``python -m pipeline`` with exit status 2."""

import pytest

from pipeline.parameters import check_arguments
from tests.pipeline.test_preflight import _cli

TWENTY = (
    "0.02,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95"
)

#: (levels, what the refusal says) for every kind of bad levels.
BAD_LEVELS = [
    ("0,0.5,0.95", "is not strictly between 0 and 1"),
    ("0.05,0.5,1", "is not strictly between 0 and 1"),
    ("0.05,0.5,1.5", "is not strictly between 0 and 1"),
    ("-0.05,0.5,0.95", "is not strictly between 0 and 1"),
    ("0.95,0.5,0.05", "must be in increasing order"),
    ("0.05,0.25,0.5,0.5,0.95", "has a level twice"),
    ("0.05,0.25,0.75,0.95", "must include 0.5"),
    (TWENTY, "20 levels, at most 19 are allowed"),
    ("0.05,half,0.95", "is not a number"),
    ("", "must be a comma list of numbers"),
]


@pytest.mark.parametrize("levels, problem", BAD_LEVELS)
def test_the_preflight_refuses_bad_levels_naming_the_option(levels, problem):
    problems = check_arguments({"quantile_levels": levels, "n_trials": 2})
    assert len(problems) == 1, problems  # one sentence, though tune and train both check
    assert problems[0].startswith("--quantile-levels: quantile_levels")
    assert problem in problems[0]


def test_the_pinball_gate_needs_the_90_percent_interval():
    problem = "must include 0.05 and 0.95 with gate_metric=pinball"
    # The default gate metric is pinball: levels without 0.05 and 0.95 are refused ...
    (refused,) = check_arguments({"quantile_levels": "0.25,0.5,0.75"})
    assert refused.startswith("--quantile-levels: ") and problem in refused
    (explicit,) = check_arguments({"quantile_levels": "0.25,0.5,0.75", "gate_metric": "pinball"})
    assert explicit == refused
    # ... and so is switching the gate to pinball on levels that lack them.
    assert check_arguments({"quantile_levels": "0.25,0.5,0.75", "gate_metric": "mae"}) == []
    assert check_arguments({"gate_metric": "pinball", "quantile_levels": "0.1,0.5,0.9"}) == [
        refused.replace("[0.25, 0.5, 0.75]", "[0.1, 0.5, 0.9]")
    ]
    assert check_arguments({"quantile_levels": "0.05,0.5,0.95"}) == []
    assert check_arguments({"gate_metric": "pinball"}) == []  # with the default levels


def test_the_gate_parameters_are_checked():
    problems = check_arguments({"gate_metric": "rmse", "coverage_tolerance": 0.0})
    assert problems == [
        "--gate-metric: gate_metric must be one of pinball, mae, got 'rmse'",
        "--coverage-tolerance: coverage_tolerance must be > 0, got 0.0",
    ]


def test_run_local_refuses_bad_levels_at_once(tmp_path, crypto_csv):
    proc, seconds = _cli(
        "run-local",
        "--root", str(tmp_path),
        "--source", str(crypto_csv),
        "--quantile-levels", "0.05,0.5,0.5,0.95",
        "--coverage-tolerance", "0.9",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert seconds < 5
    assert "error: 2 problems with the parameters:" in proc.stderr
    assert "  - --quantile-levels: quantile_levels [0.05, 0.5, 0.5, 0.95] has a level twice" in (
        proc.stderr
    )
    assert "  - --coverage-tolerance: coverage_tolerance must be <= 0.5, got 0.9" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "pipeline_root").exists()
    assert not (tmp_path / "crypto_pipeline.yaml").exists()


def test_submit_refuses_bad_levels_with_the_stacks_arguments(tmp_path):
    """submit checks the gcp profile's arguments with the command line's on top, as the
    compiled pipeline would receive them, before compiling or submitting anything."""
    import json

    from tests.pipeline.test_profiles import stack_outputs

    outputs = tmp_path / "stack-outputs.json"
    outputs.write_text(json.dumps(stack_outputs()))
    out = tmp_path / "pipeline.gcp.yaml"
    proc, seconds = _cli(
        "submit", "--dry-run", "--stack-outputs", str(outputs), "--output", str(out),
        "--quantile-levels", "0.05,0.95",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "error: --quantile-levels: quantile_levels [0.05, 0.95] must include 0.5" in proc.stderr
    assert "Nothing was run." in proc.stderr
    assert "Traceback" not in proc.stderr and seconds < 5
    assert not out.exists()


def test_the_options_are_listed_with_their_defaults():
    proc, _ = _cli("run-local", "--help")
    text = " ".join(proc.stdout.split())
    assert "--quantile-levels STR" in text and "(default: '0.05,0.25,0.5,0.75,0.95')" in text
    assert "--gate-metric STR" in text and "(default: 'pinball')" in text
    assert "--coverage-tolerance FLOAT" in text and "(default: 0.05)" in text
