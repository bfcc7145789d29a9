"""The whole pipeline through kfp.local on the real shared data, with small budgets.

Two runs: one whose gate is forced open (max_mae_ratio huge) so deploy runs, one whose
gate is forced shut (max_mae_ratio tiny) so nothing may be deployed. Both must succeed.
They use the MAE gate (gate_metric=mae), whose threshold a run can force either way.
"""

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common.features import FEATURE_NAMES
from pipeline.crypto_pipeline import compile_pipeline
from pipeline.local import run_compiled_locally
from pipeline.summary import format_summary
from tests.conftest import FULL_CSV_SHA256

pytestmark = pytest.mark.slow

SMALL_BUDGET = {"n_trials": 2, "tune_max_epochs": 4, "tune_timeout_s": 120, "epochs": 8}


def _run(root: Path, csv: Path, max_mae_ratio: float, sha256: str = FULL_CSV_SHA256, **extra):
    pipeline_yaml = compile_pipeline(root / "pipeline.yaml")
    arguments = {
        "lake": str(root / "lake"),
        "model_repository": str(root / "models"),
        "source": str(csv),
        "source_sha256": sha256,
        "max_mae_ratio": max_mae_ratio,
        "gate_metric": "mae",
        **SMALL_BUDGET,
        **extra,
    }
    return run_compiled_locally(pipeline_yaml, arguments, root / "pipeline_root")


@pytest.fixture(scope="module")
def open_gate(tmp_path_factory, crypto_csv):
    return _run(tmp_path_factory.mktemp("open"), crypto_csv, max_mae_ratio=1e6)


@pytest.fixture(scope="module")
def shut_gate(tmp_path_factory, crypto_csv):
    return _run(tmp_path_factory.mktemp("shut"), crypto_csv, max_mae_ratio=1e-9)


def _path(result, step, name) -> Path:
    artifact = result.artifact(step, name)
    assert artifact is not None, f"{step} wrote no {name!r} artifact"
    return Path(artifact["uri"])


def test_all_five_steps_succeed_when_gate_passes(open_gate):
    assert open_gate.succeeded, format_summary(open_gate)
    assert {s: r.status for s, r in open_gate.steps.items()} == {
        "ingest": "SUCCEEDED",
        "transform": "SUCCEEDED",
        "tune": "SUCCEEDED",
        "train": "SUCCEEDED",
        "deploy": "SUCCEEDED",
    }
    assert all(r.seconds > 0 for r in open_gate.steps.values())


def test_raw_artifact_is_the_source_bytes(open_gate, crypto_csv):
    raw = _path(open_gate, "ingest", "raw")
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == FULL_CSV_SHA256
    meta = open_gate.artifact("ingest", "raw")["metadata"]
    assert meta["rows"] == 29999 and Path(meta["lake_uri"]).is_file()


def test_transform_artifacts_are_well_formed(open_gate):
    features = _path(open_gate, "transform", "features")
    stats = json.loads(_path(open_gate, "transform", "stats").read_text())
    assert stats["feature_names"] == list(FEATURE_NAMES)
    splits = {}
    for split in ("train", "eval", "test"):
        shards = sorted(features.glob(f"{split}-*.csv"))
        assert shards, f"no {split} shards"
        frame = pd.concat(pd.read_csv(s) for s in shards)
        assert list(frame.columns) == ["coin", "date", "close", *FEATURE_NAMES, "target"]
        assert np.isfinite(frame[list(FEATURE_NAMES) + ["target"]].to_numpy()).all()
        assert len(frame) == stats["splits"][split]["rows"]
        splits[split] = frame
    assert splits["train"]["date"].max() < splits["eval"]["date"].min()
    assert splits["eval"]["date"].max() < splits["test"]["date"].min()
    assert stats["rejected_rows"] == 0
    assert _path(open_gate, "transform", "rejected").exists()


def test_tune_artifacts_are_well_formed(open_gate):
    best = json.loads(_path(open_gate, "tune", "best_params").read_text())
    assert {
        "learning_rate",
        "num_layers",
        "first_layer_units",
        "layer_scale",
        "dropout",
        "batch_size",
    } <= set(best)
    metrics = open_gate.artifact("tune", "metrics")["metadata"]
    assert all(math.isfinite(float(v)) for v in metrics.values())
    assert _path(open_gate, "tune", "trials_table").read_text().strip()


def test_train_metrics_are_finite_and_gate_decided_correctly(open_gate, shut_gate):
    for result, threshold in ((open_gate, 1e6), (shut_gate, 1e-9)):
        metrics = result.artifact("train", "metrics")["metadata"]
        assert metrics, "train logged no metrics"
        assert all(math.isfinite(float(v)) for v in metrics.values()), metrics
        ratio = float(metrics["mae_ratio"])
        assert result.parameter("train") is (ratio <= threshold)
    assert open_gate.parameter("train") is True
    assert shut_gate.parameter("train") is False


def test_report_embeds_plots(open_gate):
    html = _path(open_gate, "train", "report").read_text()
    assert html.count("data:image/png;base64,") >= 3


def test_shut_gate_deploys_nothing_and_still_succeeds(shut_gate):
    assert shut_gate.succeeded, format_summary(shut_gate)
    assert shut_gate.steps["deploy"].status == "SKIPPED"
    assert shut_gate.artifact("deploy", "deployment") is None
    repo = Path(shut_gate.arguments["model_repository"])
    assert not repo.exists() or not any(repo.rglob("saved_model.pb"))
    summary = format_summary(shut_gate)
    assert "NOT deployed" in summary and "mae_ratio" in summary


def test_deployed_model_predicts_like_the_trained_model(open_gate):
    from components.train.export import load_serving_fn

    deployment = open_gate.artifact("deploy", "deployment")["metadata"]
    published = Path(deployment["path"])
    assert (published / "saved_model.pb").is_file()
    record = json.loads(_path(open_gate, "deploy", "deployment").read_text())
    assert record["version"] == published.name == deployment["version"]
    train_metrics = open_gate.artifact("train", "metrics")["metadata"]
    assert record["record"]["metrics"]["mae_ratio"] == train_metrics["mae_ratio"]
    trained = _path(open_gate, "train", "model") / published.name
    test_rows = pd.concat(
        pd.read_csv(s) for s in sorted(_path(open_gate, "transform", "features").glob("test-*.csv"))
    )
    inputs = {name: test_rows[name].to_numpy(np.float32) for name in FEATURE_NAMES}
    deployed_pred = np.asarray(load_serving_fn(str(published))(inputs))
    trained_pred = np.asarray(load_serving_fn(str(trained))(inputs))
    assert deployed_pred.shape == (len(test_rows),)
    np.testing.assert_array_equal(deployed_pred, trained_pred)

    # And through the model server, as a client would get them over HTTP.
    served = _predict_over_http(
        Path(open_gate.arguments["model_repository"]),
        open_gate.arguments.get("model_name", "btc-forecast"),
        test_rows[list(FEATURE_NAMES)].to_dict("records"),
    )
    np.testing.assert_allclose(served, trained_pred, rtol=1e-6, atol=1e-9)


def _predict_over_http(repository: Path, model_name: str, instances: list[dict]) -> np.ndarray:
    import threading
    import urllib.request

    from components.deploy.server import make_server

    server = make_server(repository, model_name, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        request = urllib.request.Request(
            f"http://{host}:{port}/v1/models/{model_name}:predict",
            data=json.dumps({"instances": instances}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.load(response)["predictions"]
        status = f"http://{host}:{port}/v1/models/{model_name}"
        with urllib.request.urlopen(status, timeout=60) as response:
            levels = json.load(response)["quantile_levels"]
    finally:
        server.shutdown()
        server.server_close()
    # A feature row's prediction is the quantile vector (a point model's: the log return).
    median = None if levels is None else levels.index(0.5)
    return np.asarray(
        [p if median is None else p[median] for p in predictions], dtype=np.float64
    ).reshape(-1)


def test_summary_shows_model_beside_baseline(open_gate):
    summary = format_summary(open_gate)
    assert "baseline" in summary and "Gate: PASSED" in summary and "Deployed:" in summary
    # The quantile forecast's line, in its fixed format, right after the MAE line.
    lines = summary.splitlines()
    mae = next(i for i, x in enumerate(lines) if x.startswith("Against persistence:"))
    assert re.fullmatch(
        r"Against historical quantiles: pinball_ratio \d\.\d{4}, DM p \d\.\d{3}; "
        r"against GARCH\(1,1\)-t: (pinball_ratio \d\.\d{4}, DM p \d\.\d{3}|unavailable); "
        r"90% coverage \d\.\d{3}",
        lines[mae + 1],
    ), lines[mae + 1]
    # The report line names a file a browser renders: the artifact itself, as .html.
    report = open_gate.artifact("train", "report")
    line = next(x for x in summary.splitlines() if x.startswith("Report:"))
    html = Path(line.split(None, 1)[1])
    assert html.suffix == ".html" and html.name == Path(report["uri"]).name + ".html"
    assert html.read_bytes() == Path(report["uri"]).read_bytes()
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_users_own_csv_with_other_column_names(tmp_path, bitcoin_csv):
    """A Kaggle-style per-coin file (``Date,Open,High,Low,Close,Volume,Name,Symbol``) runs
    through the whole pipeline with a column mapping, and is stored byte for byte."""
    import csv

    with open(bitcoin_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    own = tmp_path / "btc-own.csv"
    with open(own, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Date", "Open", "High", "Low", "Close", "Volume", "Name", "Symbol"])
        for r in rows:
            writer.writerow(
                [
                    r["date"],
                    r["open"],
                    r["high"],
                    r["low"],
                    r["close"],
                    r["volume"],
                    "Bitcoin",
                    "BTC",
                ]
            )
    result = _run(
        tmp_path / "run",
        own,
        max_mae_ratio=1e-9,
        sha256="",
        column_mapping='{"date": "Date", "slug": "Name", "symbol": "Symbol"}',
    )
    assert result.succeeded, format_summary(result)
    assert _path(result, "ingest", "raw").read_bytes() == own.read_bytes()
    stats = json.loads(_path(result, "transform", "stats").read_text())
    assert stats["rejected_rows"] == 0 and stats["input_rows"] == 1793
    assert sum(stats["coins"]["bitcoin"][s] for s in ("train", "eval", "test")) > 1700


@pytest.fixture(scope="module")
def rerun(open_gate, crypto_csv):
    """The open-gate run again, same root and arguments: its model is now the champion.
    Returns the run and the repository's CURRENT and history bytes before it."""
    repo = Path(open_gate.arguments["model_repository"]) / open_gate.arguments.get(
        "model_name", "btc-forecast"
    )
    before = ((repo / "CURRENT").read_text(), (repo / "deployments.jsonl").read_bytes())
    root = Path(open_gate.arguments["lake"]).parent
    return _run(root, crypto_csv, max_mae_ratio=1e6), repo, before


def test_a_rerun_on_unchanged_data_deploys_nothing_and_says_why(open_gate, rerun):
    result, repo, before = rerun
    assert result.succeeded, format_summary(result)
    first = open_gate.artifact("train", "model")["metadata"]
    assert first["gate_outcome"] == "no-champion-passed"
    model = result.artifact("train", "model")["metadata"]
    assert model["champion_version"] == before[0].strip() == first["version"]
    assert model["gate_outcome"] == "identical-to-champion", model["gate_reason"]
    assert result.parameter("train") is False
    assert result.steps["deploy"].status == "SKIPPED"
    assert ((repo / "CURRENT").read_text(), (repo / "deployments.jsonl").read_bytes()) == before
    summary = format_summary(result)
    assert "Gate decision: not deployed: the challenger is identical to champion" in summary
    assert "Deploy: skipped, nothing deployed" in summary
    metrics = result.artifact("train", "metrics")["metadata"]
    assert metrics["identical_to_champion"] == 1.0 and metrics["has_champion"] == 1.0
    assert metrics["champion_mae"] == pytest.approx(metrics["model_mae"], rel=1e-6)
