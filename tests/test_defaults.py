"""Each default is written once, in the step function; the pipeline and every CLI agree."""

from __future__ import annotations

import argparse

import pytest

from components.common.cli import defaults_of
from components.deploy import __main__ as deploy_cli
from components.ingest import __main__ as ingest_cli
from components.train import __main__ as train_cli
from components.transform import __main__ as transform_cli
from components.tune import __main__ as tune_cli
from pipeline.crypto_pipeline import (
    PARAMETER_SOURCES,
    STEP_RUNS,
    as_parameter,
    pipeline_inputs,
)

#: CLI option dest -> parameter of the step function it feeds, per step CLI.
CLI_PARAMETERS = {
    "ingest": (
        ingest_cli,
        {
            "source": "source",
            "sha256": "expected_sha256",
            "column_mapping": "column_mapping",
            "output": "raw_path",
        },
    ),
    "transform": (
        transform_cli,
        {
            name: name
            for name in (
                "coins",
                "split",
                "max_rejected_fraction",
                "column_mapping",
                "price_tolerance",
                "num_shards",
                "runner",
            )
        },
    ),
    "tune": (
        tune_cli,
        {
            name: name
            for name in (
                "n_trials",
                "timeout_s",
                "max_epochs",
                "seed",
                "selection",
                "backend",
                "quantile_levels",
            )
        },
    ),
    "train": (
        train_cli,
        {
            name: name
            for name in (
                "best_params",
                "epochs",
                "seed",
                "ensemble_size",
                "max_mae_ratio",
                "min_improvement",
                "significance",
                "data_sha256",
                "model_name",
                "version",
                "deploy_target",
                "serving_namespace",
                "vertex_project",
                "vertex_region",
                "vertex_endpoint",
                "quantile_levels",
                "gate_metric",
                "coverage_tolerance",
            )
        },
    ),
}


def _parser_default(parser: argparse.ArgumentParser, dest: str):
    actions = [a for a in parser._actions if a.dest == dest]  # noqa: SLF001 - argparse has no public lookup
    assert actions, f"no option for {dest!r}"
    return actions[0].default


def test_every_pipeline_default_is_its_step_functions_default():
    pipeline_defaults = {name: default for name, _, default in pipeline_inputs()}
    assert set(PARAMETER_SOURCES) == {n for n, d in pipeline_defaults.items() if d is not None}
    for name, sources in PARAMETER_SOURCES.items():
        for step, parameter in sources:
            expected = as_parameter(defaults_of(STEP_RUNS[step])[parameter])
            assert pipeline_defaults[name] == expected, (name, step, parameter)


def test_the_defaults_are_the_documented_ones():
    """The values themselves, so a changed default is a visible decision."""
    defaults = {name: default for name, _, default in pipeline_inputs()}
    assert defaults["n_trials"] == 16 and defaults["seed"] == 42 and defaults["epochs"] == 200
    assert defaults["model_name"] == "btc-forecast" and defaults["coins"] == "bitcoin"
    assert defaults["split"] == "0.7,0.15,0.15" and defaults["max_mae_ratio"] == 1.0
    assert defaults["quantile_levels"] == "0.05,0.25,0.5,0.75,0.95"
    assert defaults["gate_metric"] == "pinball" and defaults["coverage_tolerance"] == 0.05


def test_the_preflight_checks_with_the_pipelines_defaults():
    """A run that gives only one of the parameters train checks together is checked with
    the others' defaults (``pipeline.parameters.RUN_DEFAULTS``): the pipeline's own."""
    from pipeline.parameters import CHECKED_TOGETHER, RUN_DEFAULTS

    defaults = {name: default for name, _, default in pipeline_inputs()}
    together = {name for group in CHECKED_TOGETHER for name in group}
    assert set(RUN_DEFAULTS) == together
    assert {name: defaults[name] for name in together} == RUN_DEFAULTS


@pytest.mark.parametrize("step", sorted(CLI_PARAMETERS))
def test_every_cli_default_is_its_step_functions_default(step):
    module, options = CLI_PARAMETERS[step]
    parser = module.build_parser()
    function_defaults = defaults_of(STEP_RUNS[step])
    for dest, parameter in options.items():
        assert _parser_default(parser, dest) == function_defaults[parameter], (step, dest)


def test_deploy_cli_defaults_are_the_functions():
    parser = deploy_cli.build_parser()
    publish = parser._subparsers._group_actions[0].choices["publish"]  # noqa: SLF001
    defaults = defaults_of(STEP_RUNS["deploy"])
    assert _parser_default(publish, "target") == defaults["target"]
    assert _parser_default(publish, "model_name") == defaults["model_name"]


def test_help_shows_the_defaults():
    help_text = tune_cli.build_parser().format_help()
    assert "(default: 16)" in help_text and "(default: 42)" in help_text
