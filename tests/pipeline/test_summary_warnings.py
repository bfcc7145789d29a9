"""The run summary shows the transform's warnings (gaps that leave few usable rows)."""

from components.images import STEPS
from pipeline.local import LocalRunResult, StepRecord
from pipeline.summary import format_summary


def test_transform_warnings_are_in_the_summary():
    steps = {step: StepRecord(step, "SUCCEEDED", 1.0) for step in STEPS}
    warning = "maker: gaps leave 40.0% of its rows usable as examples"
    outputs = {"transform": {"stats": {"uri": "x", "metadata": {"warnings": [warning]}}}}
    text = format_summary(LocalRunResult(None, steps, outputs, {}, 5.0))
    assert f"Transform warnings:\n  warning: {warning}" in text
    quiet = format_summary(LocalRunResult(None, steps, {}, {}, 5.0))
    assert "warning" not in quiet
