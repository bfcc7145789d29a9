"""Acceptance 2 on the real data: with the default settings, transform → tune → train on
Bitcoin is evaluated honestly (test rows only, the last 15% of dates; statistics from
train only), the gate follows the test mae_ratio, and the model beats persistence.

Every model-selection decision is test-blind: tune reads only the train and eval splits
(its hyper-parameters, ``l2`` included, and the trial it hands to train are chosen on
eval MAE), and the ensemble size is fixed a priori. The test split is looked at once,
here and in train's report, after those choices.
"""

import json

import numpy as np
import pytest

from components.common.features import FEATURE_NAMES
from components.train.data import load_split, load_splits
from components.train.train import run as train
from components.tune.tune import run as tune
from tests.components.transform.outputs import run_transform


@pytest.fixture(scope="module")
def bitcoin_features(crypto_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("btc-features")
    run_transform(str(crypto_csv), str(out), coins="bitcoin")
    return out, out / "stats.json"


@pytest.mark.slow
def test_default_settings_beat_persistence_on_bitcoin(bitcoin_features, tmp_path):
    features_dir, stats_path = bitcoin_features
    stats = json.loads(stats_path.read_text())
    tuned = tune(features_dir, stats_path)  # the default budget and seed
    assert "l2" in tuned.best_params  # chosen on eval, not fixed from test results
    result = train(
        features_dir,
        stats_path,
        tuned.best_params,
        model_path=tmp_path / "model",
        report_path=tmp_path / "report.html",
    )
    print(
        f"\nBitcoin test split {stats['splits']['test']}: "
        f"model MAE {result.metrics()['model_mae']:.2f} "
        f"vs persistence {result.metrics()['baseline_mae']:.2f}, mae_ratio {result.mae_ratio:.4f}; "
        f"eval: selected trial {result.metrics()['eval_mae_ratio']:.4f} as an ensemble, "
        f"{tuned.metrics()['best_eval_mae_ratio']:.4f} alone; "
        f"tune: {tuned.trials_run} trials ({tuned.trials_pruned} pruned) "
        f"in {tuned.elapsed_s:.0f} s, "
        f"selected ({tuned.selection}) {tuned.best_params}"
    )
    # Honest evaluation: the metrics are on the test rows only, which come after every
    # train and eval date, i.e. the last 15% of Bitcoin's dates.
    test = load_split(features_dir, "test")
    assert result.metrics()["test_rows"] == len(test) == stats["splits"]["test"]["rows"]
    assert test.dates[0] > stats["splits"]["eval"]["end"] > stats["splits"]["train"]["end"]
    total = sum(s["rows"] for s in stats["splits"].values())
    assert len(test) / total == pytest.approx(0.15, abs=0.01)
    # ... and the normalisation statistics are the train rows' only (not all rows').
    splits = load_splits(features_dir)
    columns = {
        **{n: {s: splits[s].features[n] for s in splits} for n in FEATURE_NAMES},
        "target": {s: splits[s].target for s in splits},
    }
    for name, values in columns.items():
        train_values = values["train"].astype(np.float64)
        assert stats["mean"][name] == pytest.approx(np.mean(train_values), rel=1e-5, abs=1e-7), name
        assert stats["std"][name] == pytest.approx(np.std(train_values), rel=1e-5), name
    everything = np.concatenate(list(columns["target"].values())).astype(np.float64)
    assert stats["mean"]["target"] != pytest.approx(np.mean(everything), rel=1e-3)
    assert np.isfinite(list(result.metrics().values())).all()
    # The gate is the test comparison with persistence at the default threshold.
    assert result.passed_gate is (result.mae_ratio <= 1.0)
    assert result.metrics()["passed_gate"] == float(result.passed_gate)
    # The acceptance goal, met by the test-blind defaults (0.9995 on this machine: a thin
    # margin; if it flips, report it rather than tune against this split).
    assert result.mae_ratio < 1.0
