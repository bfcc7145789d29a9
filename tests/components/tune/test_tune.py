"""tune(): seeded reproducibility, pruning, outputs, backends, CLI."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from components.train.model import HPARAM_KEYS
from components.tune.search_space import validate
from components.tune.tune import trials_markdown, tune, write_outputs

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SMALL = {"n_trials": 5, "timeout_s": 300, "max_epochs": 4, "patience": 2}


@pytest.fixture(scope="module")
def first(tune_data):
    return tune(*tune_data, seed=3, **SMALL)


def test_same_seed_same_result(first, tune_data):
    again = tune(*tune_data, seed=3, **SMALL)
    assert again.best_params == first.best_params
    assert again.best_value == first.best_value
    assert [t["params"] for t in again.trials] == [t["params"] for t in first.trials]
    assert [t["eval_price_mae"] for t in again.trials] == [t["eval_price_mae"] for t in first.trials]


def test_result_is_well_formed(first):
    assert set(first.best_params) == set(HPARAM_KEYS)
    validate(first.best_params)
    assert first.trials_run == 5 == len(first.trials)
    assert first.trials[0]["number"] == 0
    values = [t["eval_price_mae"] for t in first.trials if t["state"] == "complete"]
    assert first.best_value == min(values)
    metrics = first.metrics()
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["best_eval_mae_ratio"] == pytest.approx(first.best_value / first.baseline_eval_mae)


def test_pruner_prunes_hopeless_trials(tune_data):
    result = tune(
        *tune_data, n_trials=8, timeout_s=300, max_epochs=5, seed=0, patience=5,
        pruner_startup_trials=2, pruner_warmup_epochs=1,
    )
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    assert result.trials_pruned == len(pruned) >= 1
    assert all(t["epochs"] < 5 for t in pruned), "a pruned trial stops before max_epochs"
    assert result.trials[result.best_trial]["state"] == "complete"


def test_outputs_written(first, tmp_path):
    write_outputs(first, best_params_path=tmp_path / "bp.json", table_path=tmp_path / "t.md",
                  metrics_path=tmp_path / "m.json")
    assert json.loads((tmp_path / "bp.json").read_text()) == first.best_params
    table = (tmp_path / "t.md").read_text()
    assert table == trials_markdown(first)
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == first.trials_run
    assert rows[0].startswith(f"| {first.best_trial} (best) | complete |")
    assert json.loads((tmp_path / "m.json").read_text())["trials_run"] == 5


def test_vertex_backend_is_not_implemented(tune_data):
    with pytest.raises(NotImplementedError, match="tune backend 'vertex' is not implemented yet"):
        tune(*tune_data, backend="vertex", **SMALL)


def test_bad_budgets(tune_data):
    with pytest.raises(ValueError, match="n_trials"):
        tune(*tune_data, n_trials=0)
    with pytest.raises(ValueError, match="max_epochs"):
        tune(*tune_data, max_epochs=0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "components.tune", *map(str, args)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def test_cli(tune_data, tmp_path):
    assert "--n-trials" in _cli("--help").stdout
    features_dir, stats_path = tune_data
    run = _cli(features_dir, "--stats", stats_path, "--output-dir", tmp_path, "--n-trials", "2",
               "--max-epochs", "2", "-q")
    assert run.returncode == 0, run.stderr
    assert set(json.loads((tmp_path / "best_params.json").read_text())) == set(HPARAM_KEYS)
    assert (tmp_path / "trials.md").is_file() and (tmp_path / "metrics.json").is_file()
    vertex = _cli(features_dir, "--stats", stats_path, "--output-dir", tmp_path, "--backend", "vertex")
    assert vertex.returncode == 2 and "not implemented yet" in vertex.stderr
    bad = _cli(features_dir, "--output-dir", tmp_path, "--n-trials", "0")
    assert bad.returncode == 2 and "--n-trials" in bad.stderr
