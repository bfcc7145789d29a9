"""Pulumi.yaml declares every setting the program reads, with the program's defaults."""

from __future__ import annotations

import json

import yaml

from infra.config import SCHEMA
from tests.infra.checks import CLUSTER
from tests.infra.harness import PROJECT_ROOT, PULUMI_PROJECT, run_program, stack_config

PROJECT_FILE = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())


def test_project_runs_infra_with_the_project_venv():
    assert PROJECT_FILE["name"] == PULUMI_PROJECT
    assert PROJECT_FILE["main"] == "infra/"
    assert PROJECT_FILE["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    assert (PROJECT_ROOT / "infra" / "__main__.py").is_file()


def test_every_setting_is_declared_with_type_description_and_the_program_default():
    declared = PROJECT_FILE["config"]
    assert set(declared) == set(SCHEMA)
    for key, setting in SCHEMA.items():
        entry = declared[key]
        assert entry["type"] == setting.type, key
        assert entry["description"] == setting.description, key
        assert entry["default"] == setting.default, key
        if setting.type == "array":
            assert entry["items"] == {"type": "string"}, key


def test_gcp_project_is_left_required():
    # A value here would silently deploy into somebody else's project.
    assert not any(key.startswith("gcp:") for key in PROJECT_FILE["config"])


def _as_cli_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, list) else str(value)


def test_declared_defaults_passed_by_the_cli_build_the_default_stack(default_run):
    # The CLI hands the Pulumi.yaml defaults to the program as config values.
    cli_config = stack_config(
        **{k: _as_cli_value(e["default"]) for k, e in PROJECT_FILE["config"].items()}
    )
    run = run_program(cli_config)
    summary = sorted((r.type, r.name) for r in run.resources)
    assert summary == sorted((r.type, r.name) for r in default_run.resources)
    assert run.one(CLUSTER).inputs == default_run.one(CLUSTER).inputs
