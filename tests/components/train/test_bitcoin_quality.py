"""Acceptance 2 on the real data: with the default settings, transform → tune → train on
Bitcoin beats persistence on the test split (the last 15% of dates) only."""

import json

import numpy as np
import pytest

from components.train.data import load_split
from components.train.train import DEFAULT_EPOCHS, DEFAULT_SEED, train
from components.transform.transform import run_transform
from components.tune.tune import DEFAULT_MAX_EPOCHS, DEFAULT_N_TRIALS, DEFAULT_TIMEOUT_S, tune


@pytest.fixture(scope="module")
def bitcoin_features(crypto_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("btc-features")
    run_transform(str(crypto_csv), str(out), coins="bitcoin")
    return out, out / "stats.json"


@pytest.mark.slow
def test_default_settings_beat_persistence_on_bitcoin(bitcoin_features, tmp_path):
    features_dir, stats_path = bitcoin_features
    stats = json.loads(stats_path.read_text())
    tuned = tune(
        features_dir, stats_path, n_trials=DEFAULT_N_TRIALS, timeout_s=DEFAULT_TIMEOUT_S,
        max_epochs=DEFAULT_MAX_EPOCHS, seed=DEFAULT_SEED,
    )
    result = train(
        features_dir, stats_path, tuned.best_params, tmp_path / "model",
        epochs=DEFAULT_EPOCHS, seed=DEFAULT_SEED, report_path=tmp_path / "report.html",
    )
    print(
        f"\nBitcoin test split {stats['splits']['test']}: model MAE {result.metrics['model_mae']:.2f} "
        f"vs persistence {result.metrics['baseline_mae']:.2f}, mae_ratio {result.mae_ratio:.4f}; "
        f"tune: {tuned.trials_run} trials ({tuned.trials_pruned} pruned) in {tuned.elapsed_s:.0f} s, "
        f"best {tuned.best_params}"
    )
    # Honest evaluation: the metrics are on the test rows only, which come after every
    # train and eval date, i.e. the last 15% of Bitcoin's dates.
    test = load_split(features_dir, "test")
    assert result.metrics["test_rows"] == len(test) == stats["splits"]["test"]["rows"]
    assert test.dates[0] > stats["splits"]["eval"]["end"] > stats["splits"]["train"]["end"]
    total = sum(s["rows"] for s in stats["splits"].values())
    assert len(test) / total == pytest.approx(0.15, abs=0.01)
    assert np.isfinite(list(result.metrics.values())).all()
    # The acceptance goal: beat tomorrow = today, so the default gate (1.0) deploys.
    assert result.mae_ratio < 1.0
    assert result.passed_gate
