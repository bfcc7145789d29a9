"""tune(): seeded reproducibility, pruning, outputs, backends, CLI."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.common.cli import defaults_of
from components.common.contracts import HPARAM_NAMES
from components.common.results import ParameterError
from components.tune.search_space import validate
from components.tune.tune import run as tune
from components.tune.tune import select_one_se, trials_markdown, within_one_se

DEFAULT_SELECTION = defaults_of(tune)["selection"]

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SMALL = {"n_trials": 5, "timeout_s": 300, "max_epochs": 4, "patience": 2}


@pytest.fixture(scope="module")
def outputs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tune-outputs")


@pytest.fixture(scope="module")
def first(tune_data, outputs_dir):
    return tune(
        *tune_data,
        seed=3,
        best_params_path=outputs_dir / "bp.json",
        trials_table_path=outputs_dir / "t.md",
        metrics_path=outputs_dir / "m.json",
        **SMALL,
    )


def test_same_seed_same_result(first, tune_data):
    again = tune(*tune_data, seed=3, **SMALL)
    assert again.best_params == first.best_params
    assert again.best_value == first.best_value
    assert [t["params"] for t in again.trials] == [t["params"] for t in first.trials]
    assert [t["eval_pinball"] for t in again.trials] == [t["eval_pinball"] for t in first.trials]
    assert [t["params"]["l2"] for t in again.trials] == [t["params"]["l2"] for t in first.trials]
    assert (again.best_trial, again.lowest_trial) == (first.best_trial, first.lowest_trial)


def test_result_is_well_formed(first):
    assert set(first.best_params) == set(HPARAM_NAMES)
    assert "l2" in first.best_params
    validate(first.best_params)
    assert first.trials_run == 5 == len(first.trials)
    assert first.trials[0]["number"] == 0
    complete = [t for t in first.trials if t["state"] == "complete"]
    assert first.lowest_value == min(t["eval_pinball"] for t in complete)
    assert first.trials[first.lowest_trial]["eval_pinball"] == first.lowest_value
    selected = first.trials[first.best_trial]
    assert first.best_value == selected["eval_pinball"] and first.best_params == selected["params"]
    assert first.selection == DEFAULT_SELECTION == "one_se"
    # the one-SE rule: the selected trial is within one SE of the lowest, and no trial
    # within it has a larger l2
    within = [t for t in complete if t["within_one_se"]]
    assert selected in within and first.trials_within_one_se == len(within)
    assert selected["params"]["l2"] == max(t["params"]["l2"] for t in within)
    assert all(t["within_one_se"] is None for t in first.trials if t["state"] != "complete")
    metrics = first.metrics()
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["best_eval_pinball_ratio"] == pytest.approx(
        first.best_value / first.baseline_eval_pinball
    )
    assert metrics["lowest_eval_pinball"] == first.lowest_value <= first.best_value


def test_min_selection_takes_the_lowest_trial(first, tune_data):
    lowest = tune(*tune_data, seed=3, selection="min", **SMALL)
    # the same study (seeded); only the choice differs
    assert [t["eval_pinball"] for t in lowest.trials] == [t["eval_pinball"] for t in first.trials]
    assert lowest.best_trial == lowest.lowest_trial == first.lowest_trial
    assert lowest.best_value == first.lowest_value
    assert lowest.best_params == first.trials[first.lowest_trial]["params"]
    with pytest.raises(ValueError, match="selection must be one of"):
        tune(*tune_data, selection="best_on_test", **SMALL)


def _noise(rng, n):
    z = rng.normal(0.0, 5.0, size=n)
    return z - z.mean()  # exactly zero mean: the excess is what the test adds


def test_within_one_se_is_a_paired_comparison():
    rng = np.random.default_rng(0)
    base = rng.exponential(100.0, size=400)  # heavy-ish tailed per-row losses
    errors = {
        0: base,
        1: base + _noise(rng, 400) + 0.5,  # excess 0.5, paired SE ~0.25: distinguishable
        2: base + _noise(rng, 400) + 0.1,  # excess 0.1, paired SE ~0.25: indistinguishable
        3: base.copy(),  # identical to 0: indistinguishable, and 0 keeps "lowest" (lower number)
    }
    lowest, within = within_one_se(errors)
    assert lowest == 0
    assert within == {0: True, 1: False, 2: True, 3: True}
    # an unpaired SE of the lowest mean loss (~5) would have let trial 1 in as well
    assert np.std(base, ddof=1) / np.sqrt(400) > 1.0


def test_select_one_se_prefers_the_most_regularised():
    rows = np.linspace(1.0, 2.0, 50)
    wobble = 0.05 * np.resize([1.0, -1.0], 50)  # mean 0, paired SE ~0.007
    errors = {0: rows, 1: rows + wobble + 0.005, 2: rows + wobble + 1.0, 3: rows + wobble + 0.005}
    l2 = {0: 1e-3, 1: 3e-2, 2: 1e-1, 3: 3e-2}
    assert within_one_se(errors)[1] == {0: True, 1: True, 2: False, 3: True}
    # trial 2 has the largest l2 but is clearly worse; 1 and 3 tie on l2 and loss: lower number
    assert select_one_se(errors, l2) == 1
    assert select_one_se(errors, {**l2, 0: 0.05}) == 0
    assert select_one_se({0: rows}, {0: 1e-3}) == 0
    with pytest.raises(ValueError, match="no trial errors"):
        within_one_se({})


def test_tune_never_reads_the_test_split(tune_data, tmp_path):
    """Model selection is test-blind: tune runs on a features directory without test rows."""
    features_dir, stats_path = tune_data
    blind = tmp_path / "features"
    blind.mkdir()
    for shard in features_dir.glob("*.csv"):
        if not shard.name.startswith("test-"):
            shutil.copy(shard, blind / shard.name)
    assert not list(blind.glob("test-*")) and list(features_dir.glob("test-*"))
    result = tune(blind, stats_path, n_trials=1, timeout_s=60, max_epochs=2, seed=3, patience=1)
    assert result.trials_run == 1


def test_pruner_prunes_hopeless_trials(tune_data, monkeypatch):
    """The pruner reads each epoch's eval pinball loss (``fit``'s ``val_loss``, in
    standardised units, times the target's std: the objective's units). The synthetic
    series has no volatility to learn, so every real net sits near its starting loss;
    ``fit`` here reports made-up curves instead: trials 2 and 5 are hopeless."""
    import components.train as train_face

    hopeless = {2, 5}
    calls = []

    def fit(model, train_split, eval_split, stats, hparams, levels, *, epochs, callbacks,
            **kwargs):  # fmt: skip
        trial = len(calls)
        calls.append(trial)
        history = {"loss": [], "val_loss": []}
        for epoch in range(epochs):
            loss = 2.0 if trial in hopeless else 1.0 - 0.1 * epoch
            history["loss"].append(loss)
            history["val_loss"].append(loss)
            for callback in callbacks:
                callback.on_epoch_end(epoch, {"val_loss": loss})
        return history

    monkeypatch.setattr(train_face, "fit", fit)
    result = tune(
        *tune_data,
        n_trials=8,
        timeout_s=300,
        max_epochs=5,
        seed=0,
        patience=5,
        pruner_startup_trials=2,
        pruner_warmup_epochs=1,
    )
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    assert [t["number"] for t in pruned] == sorted(hopeless)
    assert result.trials_pruned == len(pruned)
    # Pruned at the first epoch after the warm-up: 2.0 is above the median (0.9) of the others.
    assert all(t["epochs"] == 2 < 5 for t in pruned), "a pruned trial stops before max_epochs"
    std = train_face.load_stats(tune_data[1]).target_std
    assert all(t["eval_pinball"] == pytest.approx(2.0 * std) for t in pruned)
    assert result.trials[result.best_trial]["state"] == "complete"


def test_outputs_written(first, outputs_dir):
    tmp_path = outputs_dir
    assert json.loads((tmp_path / "bp.json").read_text()) == first.best_params
    table = (tmp_path / "t.md").read_text()
    assert table == trials_markdown(first)
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == first.trials_run
    lowest_mark = "(lowest)" if first.lowest_trial != first.best_trial else "(selected, lowest)"
    assert rows[0].startswith(f"| {first.lowest_trial} {lowest_mark} | complete |")
    assert sum("(selected" in r for r in rows) == 1
    assert [r for r in rows if "(selected" in r][0].startswith(f"| {first.best_trial} (selected")
    assert "within one standard error" in table and "| within 1 SE |" in table
    assert json.loads((tmp_path / "m.json").read_text())["trials_run"] == 5


def test_vertex_backend_names_every_missing_setting_before_any_request(tune_data):
    with pytest.raises(ParameterError, match="is required with backend=vertex") as failure:
        tune(*tune_data, backend="vertex", **SMALL)
    for name in ("project", "region", "service_account", "staging_bucket", "image"):
        assert f"vertex_{name} is required" in str(failure.value)


def test_bad_budgets(tune_data):
    with pytest.raises(ValueError, match="n_trials"):
        tune(*tune_data, n_trials=0)
    with pytest.raises(ValueError, match="max_epochs"):
        tune(*tune_data, max_epochs=0)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "components.tune", *map(str, args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli(tune_data, tmp_path):
    assert "--n-trials" in _cli("--help").stdout
    features_dir, stats_path = tune_data
    run = _cli(
        features_dir,
        "--stats",
        stats_path,
        "--output-dir",
        tmp_path,
        "--n-trials",
        "2",
        "--max-epochs",
        "2",
        "-q",
    )
    assert run.returncode == 0, run.stderr
    assert set(json.loads((tmp_path / "best_params.json").read_text())) == set(HPARAM_NAMES)
    assert "selected trial" in run.stdout and "(one_se)" in run.stdout
    assert (tmp_path / "trials.md").is_file() and (tmp_path / "metrics.json").is_file()
    vertex = _cli(
        features_dir, "--stats", stats_path, "--output-dir", tmp_path, "--backend", "vertex"
    )
    # Without its settings (the pipeline passes them) the Vertex backend is a usage error.
    assert (
        vertex.returncode == 2 and "vertex_project is required with backend=vertex" in vertex.stderr
    )
    bad = _cli(features_dir, "--output-dir", tmp_path, "--n-trials", "0")
    assert bad.returncode == 2 and "--n-trials" in bad.stderr
    bad_rule = _cli(features_dir, "--output-dir", tmp_path, "--selection", "test")
    assert bad_rule.returncode == 2 and "--selection" in bad_rule.stderr


LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def _by_hand_pinball(target, quantiles, levels) -> np.ndarray:
    """The pinball loss of each row averaged over the levels, written out."""
    rows = []
    for y, qs in zip(target, quantiles, strict=True):
        losses = [
            tau * (y - q) if y >= q else (1 - tau) * (q - y)
            for tau, q in zip(levels, qs, strict=True)
        ]
        rows.append(np.mean(losses))
    return np.asarray(rows)


def test_eval_pinball_and_the_historical_reference_by_hand():
    from types import SimpleNamespace

    from components.tune.tune import eval_pinball, historical_quantiles_pinball

    target = np.array([0.01, -0.02, 0.0, 0.03])
    fixed = np.array([[-0.02, 0.0, 0.01, 0.02, 0.04]] * 4)

    class Rows(SimpleNamespace):
        def __len__(self):
            return len(self.target)

    split = Rows(target=target, features={"x": np.zeros(4, dtype=np.float32)})
    value, per_row = eval_pinball(lambda batch, training: fixed, split, LEVELS)
    np.testing.assert_allclose(per_row, _by_hand_pinball(target, fixed, LEVELS), atol=1e-15)
    assert value == pytest.approx(np.mean(_by_hand_pinball(target, fixed, LEVELS)))
    # Row 0 (0.01, the median): 0.2*[0.05*0.03, 0.25*0.01, 0, 0.25*0.01, 0.05*0.03]
    assert per_row[0] == pytest.approx((0.0015 + 0.0025 + 0 + 0.0025 + 0.0015) / 5)

    past = Rows(target=np.linspace(-0.05, 0.05, 101), features={})
    reference, rows = historical_quantiles_pinball(past, split, LEVELS)
    constant = np.quantile(past.target, LEVELS)  # -0.045, -0.025, 0, 0.025, 0.045
    np.testing.assert_allclose(constant, [-0.045, -0.025, 0.0, 0.025, 0.045], atol=1e-12)
    expected = _by_hand_pinball(target, np.tile(constant, (4, 1)), LEVELS)
    np.testing.assert_allclose(rows, expected, atol=1e-15)
    assert reference == pytest.approx(expected.mean())
    with pytest.raises(FloatingPointError, match="eval pinball loss is nan"):
        eval_pinball(lambda batch, training: fixed * np.nan, split, LEVELS)


@pytest.mark.parametrize("selection", ["min", "one_se"])
def test_trials_are_selected_on_eval_pinball_not_on_the_medians_mae(
    tune_data, monkeypatch, selection
):
    """Trial 0's median is exact (eval price MAE 0) but its quantiles are far too wide;
    trial 1's median is a little off but its spread fits: pinball prefers trial 1, the old
    MAE objective trial 0. The trials' values are the eval pinball losses, computed here by
    hand, and the reference is the train period's historical quantiles on eval."""
    import components.train as train_face

    features_dir, stats_path = tune_data
    splits = train_face.load_splits(features_dir, ("train", "eval"))
    eval_target = splits["eval"].target.astype(np.float64)
    spread = float(np.std(splits["train"].target))
    wide = eval_target[:, None] + 20 * spread * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    fitted = eval_target[:, None] + 1e-3 + spread * np.array([-1.6, -0.7, 0.0, 0.7, 1.6])
    forecasts = [wide, fitted]

    def predict_quantiles(model, split):
        assert len(split) == len(eval_target), "tune scores the eval split only"
        return forecasts.pop(0)

    monkeypatch.setattr(train_face, "predict_quantiles", predict_quantiles)
    result = tune(
        *tune_data,
        n_trials=2,
        timeout_s=300,
        max_epochs=1,
        patience=1,
        seed=3,
        selection=selection,
        quantile_levels=",".join(map(str, LEVELS)),
    )
    values = [t["eval_pinball"] for t in result.trials]
    expected = [_by_hand_pinball(eval_target, q, LEVELS).mean() for q in (wide, fitted)]
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    assert expected[1] < expected[0]
    assert result.best_trial == result.lowest_trial == 1
    assert result.best_value == pytest.approx(expected[1])
    assert result.quantile_levels == LEVELS
    constant = np.quantile(splits["train"].target.astype(np.float64), LEVELS)
    reference = _by_hand_pinball(eval_target, np.tile(constant, (len(eval_target), 1)), LEVELS)
    assert result.baseline_eval_pinball == pytest.approx(reference.mean(), rel=1e-12)
    metrics = result.metrics()
    assert metrics["best_eval_pinball"] == result.best_value
    assert metrics["best_eval_pinball_ratio"] == pytest.approx(expected[1] / reference.mean())
    table = trials_markdown(result)
    assert "Objective: eval pinball" in table and "| eval pinball | ratio to historical" in table
    assert table.splitlines()[6].startswith("| 1 (selected, lowest) | complete |")


@pytest.mark.parametrize(
    "levels, problem",
    [
        ("0,0.5,0.9", "not strictly between 0 and 1"),
        ("0.1,0.5,1", "not strictly between 0 and 1"),
        ("0.9,0.5,0.1", "must be in increasing order"),
        ("0.1,0.5,0.5,0.9", "has a level twice"),
        ("0.1,0.25,0.75,0.9", "must include 0.5"),
        (",".join(f"{k / 21:.4f}" for k in range(1, 21)).replace("0.4762", "0.5"), "at most 19"),
        ("0.1,median,0.9", "is not a number"),
    ],
)
def test_bad_quantile_levels_are_refused_at_once(tune_data, capsys, levels, problem):
    from components.tune import __main__ as tune_cli

    features_dir, stats_path = tune_data
    with pytest.raises(ParameterError, match="quantile_levels") as failure:
        tune(*tune_data, quantile_levels=levels)
    assert problem in str(failure.value)
    with pytest.raises(SystemExit) as cli_exit:
        tune_cli.main([str(features_dir), "--output-dir", "unused", "--quantile-levels", levels])
    assert cli_exit.value.code == 2
    err = capsys.readouterr().err
    assert "argument --quantile-levels:" in err and problem in err
