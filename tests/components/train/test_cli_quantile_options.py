"""The train CLI's quantile options: defaults from ``train.run``, passed through, and bad
levels refused with exit status 2 naming --quantile-levels before anything is read."""

import pytest

from components.common.cli import defaults_of
from components.train import __main__ as train_cli
from components.train.train import run

#: 20 levels, otherwise fine (increasing, inside (0, 1), with 0.5).
TWENTY = (
    "0.01,0.02,0.03,0.04,0.05,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95,0.96,0.97,0.98,0.99,0.995"
)

BAD_LEVELS = [
    ("0,0.05,0.5,0.95", "is not strictly between 0 and 1"),
    ("0.05,0.5,0.95,1", "is not strictly between 0 and 1"),
    ("0.05,0.5,0.95,2", "is not strictly between 0 and 1"),
    ("0.5,0.05,0.95", "must be in increasing order"),
    ("0.05,0.5,0.95,0.95", "has a level twice"),
    ("0.05,0.25,0.75,0.95", "must include 0.5"),
    (TWENTY, "20 levels, at most 19 are allowed"),
    ("0.05,0.5,x", "is not a number"),
]


@pytest.mark.parametrize("levels, problem", BAD_LEVELS)
def test_bad_levels_exit_2_naming_the_option(tmp_path, capsys, levels, problem):
    argv = [str(tmp_path), "--output-dir", str(tmp_path / "out"), "--quantile-levels", levels]
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --quantile-levels: quantile_levels" in err and problem in err
    assert not (tmp_path / "out").exists()


def test_the_pinball_gate_needs_the_90_percent_interval(tmp_path, capsys):
    argv = [str(tmp_path), "--output-dir", str(tmp_path / "out")]
    assert train_cli.main([*argv, "--quantile-levels", "0.25,0.5,0.75"]) == 2
    err = capsys.readouterr().err
    assert (
        "train: error: argument --quantile-levels: quantile_levels [0.25, 0.5, 0.75] must " in err
    )
    assert "include 0.05 and 0.95 with gate_metric=pinball" in err
    # The MAE gate does not need them: the step runs (and fails on the missing input, 1).
    mae = [*argv, "--quantile-levels", "0.25,0.5,0.75", "--gate-metric", "mae"]
    assert train_cli.main(mae) == 1
    assert "stats file not found" in capsys.readouterr().err


def test_bad_gate_options_exit_2(tmp_path, capsys):
    argv = [str(tmp_path), "--output-dir", str(tmp_path / "out")]
    for extra, message in (
        (["--gate-metric", "rmse"], "argument --gate-metric: invalid choice: 'rmse'"),
        (["--coverage-tolerance", "0"], "argument --coverage-tolerance: must be > 0"),
    ):
        with pytest.raises(SystemExit) as exit_:
            train_cli.main([*argv, *extra])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert train_cli.main([*argv, "--coverage-tolerance", "0.9"]) == 2
    assert "coverage_tolerance must be <= 0.5, got 0.9" in capsys.readouterr().err


def test_the_options_reach_run_with_its_defaults(tmp_path, monkeypatch):
    calls = []

    def fake_run(*args, **kwargs):
        calls.append(kwargs)
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(train_cli, "run", fake_run)
    argv = [str(tmp_path), "--output-dir", str(tmp_path / "out")]
    assert train_cli.main(argv) == 1
    defaults = defaults_of(run)
    assert {k: calls[0][k] for k in ("quantile_levels", "gate_metric", "coverage_tolerance")} == {
        k: defaults[k] for k in ("quantile_levels", "gate_metric", "coverage_tolerance")
    }
    given = ["--quantile-levels", "0.1,0.5,0.9", "--gate-metric", "mae"]
    assert train_cli.main([*argv, *given, "--coverage-tolerance", "0.02"]) == 1
    assert calls[1]["quantile_levels"] == "0.1,0.5,0.9"
    assert calls[1]["gate_metric"] == "mae" and calls[1]["coverage_tolerance"] == 0.02


def test_help_names_the_options_and_their_defaults():
    text = " ".join(train_cli.build_parser().format_help().split())
    assert "--quantile-levels QUANTILE_LEVELS" in text
    assert "(default: 0.05,0.25,0.5,0.75,0.95)" in text
    assert "--gate-metric {pinball,mae}" in text and "(default: pinball)" in text
    assert "(default: 0.05)" in text
