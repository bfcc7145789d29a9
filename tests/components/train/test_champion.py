"""train against a real champion: a model deployed into a local repository by the deploy
step, scored again on this run's test window; the first run, the identical re-run, a
changed-data re-run, the report's content."""

import json
import logging
import re
from html import escape

import numpy as np
import pytest

from components.common.results import ParameterError
from components.deploy import ModelRepository
from components.deploy import run as deploy
from components.train.champion import find_champion
from components.train.evaluate import price_metrics
from components.train.export import load_serving_fn
from tests.components.train.conftest import train_tiny

DATA_A, DATA_B = "a" * 64, "b" * 64


def _train(synthetic_data, out, repo, version, data_sha256, **kwargs):
    return train_tiny(
        synthetic_data,
        out,
        version,
        data_sha256,
        model_repository=str(repo),
        deploy_target="local",
        **kwargs,
    )


def _deploy(result, repo):
    """As the pipeline's deploy wrapper does: the model's metadata, minus the version."""
    metadata = dict(result.output_metadata()["model"])
    version = metadata.pop("version")
    return deploy(
        str(result.export_path.parent),
        model_repository=str(repo),
        model_name="tiny",
        metrics=metadata,
        version=version,
    )


def _state(repo):
    model = ModelRepository(repo, "tiny")
    return model.current(), (model.path / "deployments.jsonl").read_bytes()


@pytest.fixture(scope="module")
def runs(synthetic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("champion")
    repo = out / "repository"
    first = _train(synthetic_data, out, repo, "1", DATA_A)
    _deploy(first, repo)
    before = _state(repo)
    again = _train(synthetic_data, out, repo, "2", DATA_A)
    changed = _train(
        synthetic_data,
        out,
        repo,
        "3",
        DATA_B,
        lineage={"run": "run-42", "git revision": "0123456789ab", "images": {"train": "t@sha"}},
    )
    return {"first": first, "again": again, "changed": changed, "repo": repo, "before": before}


def test_first_run_has_no_champion_and_persistence_decides(runs):
    first = runs["first"]
    assert first.passed_gate and first.gate_outcome == "no-champion-passed"
    assert first.champion_version is None
    assert first.metrics()["has_champion"] == 0.0 and "champion_mae" not in first.metrics()
    assert "no champion yet, persistence decides" in first.gate_reason
    html = first.report_path.read_text()
    assert "no champion to compare with" in html and "no champion (first deploy)" in html


def test_identical_challenger_is_not_deployed_and_says_why(runs):
    again = runs["again"]
    assert again.passed_gate is False and again.gate_outcome == "identical-to-champion"
    assert "identical to champion version 1" in again.gate_reason
    assert again.metrics()["identical_to_champion"] == 1.0
    assert again.metrics()["passed_gate"] == 0.0
    # Nothing was published by the run: CURRENT and the deployment history are as before.
    assert _state(runs["repo"]) == runs["before"] and runs["before"][0] == "1"


def test_the_champion_is_scored_on_this_runs_test_window(runs, splits_and_stats):
    changed = runs["changed"]
    assert changed.champion_version == "1" and changed.data_sha256 == DATA_B
    assert changed.gate_outcome in {"beats-both", "not-better-than-champion", "not-significant"}
    test = splits_and_stats[0]["test"]
    champion = ModelRepository(runs["repo"], "tiny").version_path("1")
    predicted = test.close * np.exp(load_serving_fn(champion)(test.features))
    expected = price_metrics(test.close, test.next_close(), predicted)
    metrics = changed.metrics()
    for name in ("mae", "rmse", "mape"):
        assert metrics[f"champion_{name}"] == pytest.approx(expected[name], rel=1e-9)
    assert metrics["champion_mae_ratio"] == pytest.approx(metrics["model_mae"] / expected["mae"])
    assert 0.0 <= metrics["dm_champion_p_value"] <= 1.0
    assert metrics["identical_to_champion"] == 0.0
    # The deploy record carries what the next run compares with.
    record = ModelRepository(runs["repo"], "tiny").record("1")["metrics"]
    assert record["data_sha256"] == DATA_A and json.loads(record["hparams"])["num_layers"] == 1


def test_the_report_has_verdicts_the_test_the_plot_and_the_lineage(runs):
    changed = runs["changed"]
    html = changed.report_path.read_text()
    for metric in ("MAE", "RMSE", "MAPE"):
        line = re.search(rf"<li>{metric} [^<]*</li>", html)
        assert line, metric
        assert re.search(r"(better than|worse than|level with) persistence", line.group(0))
        assert re.search(r"(better than|worse than|level with) the champion", line.group(0))
    assert "against champion 1: DM* = " in html and "one-sided p = " in html
    assert "against persistence: DM* = " in html
    assert 'alt="cumulative plot" src="data:image/png;base64,' in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 6  # + fan, calibration
    for key, value in (
        ("data SHA-256", DATA_B),
        ("run", "run-42"),
        ("git revision", "0123456789ab"),
        ("model version", "3"),
        ("training fingerprint", changed.training_fingerprint),
    ):
        assert f"<tr><td>{key}</td><td>{value}</td></tr>" in html, key
    assert "<tr><td>image train</td><td>t@sha</td></tr>" in html
    assert re.search(r"<tr><td>hyper-parameters</td><td>[^<]*num_layers=1[^<]*</td></tr>", html)
    assert html.index("<h2>Lineage</h2>") < html.index("<h2>Training curves</h2>")
    reason = escape(changed.gate_reason)
    assert f"Gate NOT PASSED</b>: {reason}" in html or changed.passed_gate
    assert "Decision</b>: " + reason in html
    # Rounded for people: no 16-digit floats anywhere in the text.
    text = re.sub(r"base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"\d\.\d{7,}", text)


def test_find_champion_reads_the_target_of_the_repository(runs, caplog):
    assert find_champion(str(runs["repo"]), "tiny", "local").version == "1"
    with caplog.at_level(logging.INFO, logger="components.train.champion"):
        assert find_champion(str(runs["repo"]), "other-model", "local") is None
    assert "no CURRENT version of other-model" in caplog.text
    # the cloud targets serve from the models bucket: a local repository is a usage error
    # (their look-ups: test_champion_cloud.py)
    with pytest.raises(ParameterError, match="model_repository must be gs://"):
        find_champion(str(runs["repo"]), "tiny", "vertex", {"vertex_project": "p",
                                                             "vertex_region": "r"})  # fmt: skip
    with pytest.raises(ParameterError, match="unknown deploy target 'kserve'"):
        find_champion(str(runs["repo"]), "tiny", "kserve")
