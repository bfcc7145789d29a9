"""train(): outputs, metrics, report, the gate both ways, parameters from JSON, CLI."""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from components.train.evaluate import flat_metrics
from components.train.export import load_serving_fn
from components.train.model import DEFAULT_HPARAMS
from components.train.report import human
from components.train.train import run as train
from tests.components.train.conftest import TINY_PARAMS

PROJECT_ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def passed(synthetic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    features_dir, stats_path = synthetic_data
    (out / "best_params.json").write_text(json.dumps(TINY_PARAMS))
    result = train(
        features_dir,
        stats_path,
        out / "best_params.json",
        model_path=out / "model",
        epochs=4,
        seed=0,
        max_mae_ratio=100.0,
        gate_metric="mae",
        model_name="tiny",
        version="7",
        report_path=out / "report.html",
        ensemble_size=2,
    )
    return out, result


def test_outputs_and_metrics(passed, splits_and_stats):
    out, result = passed
    assert result.export_path == out / "model" / "7"
    assert result.version == "7"
    # TINY_PARAMS has the six keys of best_params files written before l2 was tuned:
    # train still reads them and falls back to the default l2
    assert "l2" not in TINY_PARAMS
    assert result.hparams == {**TINY_PARAMS, "l2": DEFAULT_HPARAMS["l2"]}
    for key in (
        "model_mae",
        "baseline_mae",
        "model_rmse",
        "model_mape",
        "model_directional_accuracy",
        "mae_ratio",
        "eval_mae_ratio",
        "mean_epochs_run",
        "mean_best_epoch",
    ):
        assert math.isfinite(result.metrics()[key]), key
    assert result.metrics()["ensemble_size"] == 2 and len(result.histories) == 2
    assert result.metrics()["mae_ratio"] == pytest.approx(
        result.metrics()["model_mae"] / result.metrics()["baseline_mae"]
    )
    assert result.metrics()["test_rows"] == len(splits_and_stats[0]["test"])
    assert 1 <= result.metrics()["mean_best_epoch"] <= result.metrics()["mean_epochs_run"] <= 4


def test_metrics_are_those_of_the_exported_model(passed, splits_and_stats):
    from components.train.evaluate import evaluate

    test = splits_and_stats[0]["test"]
    served = load_serving_fn(passed[1].export_path)(test.features)
    again = flat_metrics(evaluate(test.close, test.target, served))
    assert again["model_mae"] == pytest.approx(passed[1].metrics()["model_mae"], rel=1e-6)
    assert again["baseline_mae"] == pytest.approx(passed[1].metrics()["baseline_mae"], rel=1e-12)


def test_gate_passes_when_ratio_is_within_the_threshold(passed):
    result = passed[1]
    assert result.passed_gate is True and result.metrics()["passed_gate"] == 1.0


def test_gate_fails_when_the_threshold_is_tiny(synthetic_data, tmp_path):
    result = train(
        *synthetic_data,
        TINY_PARAMS,
        model_path=tmp_path / "model",
        epochs=2,
        seed=0,
        max_mae_ratio=1e-6,
        gate_metric="mae",
        version="1",
        report_path=tmp_path / "report.html",
        ensemble_size=1,
    )
    assert result.passed_gate is False and result.mae_ratio > 1e-6
    assert result.export_path.is_dir(), "the model is exported either way; deploy reads the gate"
    html = (tmp_path / "report.html").read_text()
    assert "Gate NOT PASSED" in html and "&gt; max_mae_ratio 1e-06 (does not beat it)" in html


def test_report_embeds_plots_and_the_decision(passed):
    html = passed[1].report_path.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    # fan chart, calibration, prices, cumulative errors, training curves, error distribution
    assert len(images) == 6
    assert all(len(i) > 1000 for i in images)
    assert "Gate PASSED" in html and "persistence" in html
    assert human(passed[1].metrics()["model_mae"]) in html
    assert "http" not in html.replace("http-equiv", "")  # nothing linked


def test_best_params_with_l2_are_used(synthetic_data, tmp_path):
    (tmp_path / "bp.json").write_text(json.dumps({**TINY_PARAMS, "l2": 0.05}))
    result = train(
        *synthetic_data,
        tmp_path / "bp.json",
        model_path=tmp_path / "m",
        epochs=1,
        seed=0,
        version="1",
        report_path=tmp_path / "r.html",
        ensemble_size=1,
    )
    assert result.hparams["l2"] == 0.05
    assert "0.05" in result.report_path.read_text()


def test_bad_inputs_fail_clearly(synthetic_data, tmp_path):
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        train(
            *synthetic_data,
            {"lr": 0.1},
            model_path=tmp_path / "m",
            epochs=1,
            seed=0,
            report_path=tmp_path / "r.html",
        )
    with pytest.raises(FileNotFoundError, match="best_params file not found"):
        train(
            *synthetic_data,
            tmp_path / "nope.json",
            model_path=tmp_path / "m",
            epochs=1,
            seed=0,
            report_path=tmp_path / "r.html",
        )
    with pytest.raises(ValueError, match="folder name"):
        train(
            *synthetic_data,
            {},
            model_path=tmp_path / "m",
            epochs=1,
            seed=0,
            model_name="a/b",
            report_path=tmp_path / "r.html",
        )
    with pytest.raises(ValueError, match="l2=-0.1"):
        train(
            *synthetic_data,
            {"l2": -0.1},
            model_path=tmp_path / "m",
            epochs=1,
            seed=0,
            report_path=tmp_path / "r.html",
        )
    with pytest.raises(ValueError, match="ensemble_size"):
        train(
            *synthetic_data,
            {},
            model_path=tmp_path / "m",
            epochs=1,
            seed=0,
            ensemble_size=0,
            report_path=tmp_path / "r.html",
        )


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "components.train", *map(str, args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_help_and_bad_input(tmp_path):
    help_run = _cli("--help")
    assert (
        help_run.returncode == 0
        and "--max-mae-ratio" in help_run.stdout
        and "persistence" in help_run.stdout
    )
    missing = _cli(tmp_path / "nowhere", "--output-dir", tmp_path / "out")
    assert missing.returncode == 1  # the step ran and its input is not there
    assert "error: stats file not found" in missing.stderr
    bad = _cli(tmp_path, "--output-dir", tmp_path / "out", "--epochs", "0")
    assert bad.returncode == 2 and "--epochs" in bad.stderr


def test_cli_trains_and_requires_the_gate(synthetic_data, tmp_path):
    features_dir, stats_path = synthetic_data
    params = tmp_path / "p.json"
    params.write_text(json.dumps(TINY_PARAMS))
    run = _cli(
        features_dir,
        "--stats",
        stats_path,
        "--best-params",
        params,
        "--output-dir",
        tmp_path,
        "--epochs",
        "2",
        "--max-mae-ratio",
        "1e-9",
        "--version",
        "3",
        "--ensemble-size",
        "1",
        "--require-gate",
        "-q",
    )
    assert run.returncode == 1, run.stderr
    assert "gate FAILED" in run.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["passed_gate"] == 0.0 and np.isfinite(metrics["mae_ratio"])
    assert (tmp_path / "model" / "3" / "saved_model.pb").is_file()
    assert (tmp_path / "report.html").is_file()


def test_pinball_gate_scores_both_baselines_and_names_the_failed_condition(
    synthetic_data, tmp_path
):
    """The default gate: quantile scores beside historical quantiles and GARCH(1,1)-t on
    the test rows; a coverage tolerance no model can meet fails with its figures."""
    result = train(
        *synthetic_data,
        TINY_PARAMS,
        model_path=tmp_path / "model",
        epochs=2,
        seed=0,
        coverage_tolerance=1e-9,
        version="1",
        report_path=tmp_path / "report.html",
        ensemble_size=1,
    )
    m = result.metrics()
    assert m["gate_pinball"] == 1.0 and result.passed_gate is False
    assert m["pinball_ratio"] == pytest.approx(m["model_pinball"] / m["historical_pinball"])
    if m["garch_available"]:
        assert m["garch_pinball_ratio"] == pytest.approx(m["model_pinball"] / m["garch_pinball"])
    assert 0 <= m["model_coverage_90"] <= 1 and m["model_width_90"] > m["model_width_50"] > 0
    assert m["model_crossings"] == 0
    assert re.search(r"90% coverage 0\.\d{3} is 0\.\d{3} (below|above) 0\.90", result.gate_reason)
    assert result.quantile_levels == (0.05, 0.25, 0.5, 0.75, 0.95)
    assert load_serving_fn(result.export_path).levels == result.quantile_levels
