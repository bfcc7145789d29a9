"""The compiled pipeline YAML is the deployable unit: check its structure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.images import STEPS, image_for
from pipeline.crypto_pipeline import compile_pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")
    return yaml.safe_load(path.read_text())


def _all_tasks(spec: dict) -> dict[str, dict]:
    """Every task of the root DAG and of nested DAGs (conditions), by name."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_five_step_tasks(compiled):
    executors = compiled["deploymentSpec"]["executors"]
    step_tasks = {name for name, t in _all_tasks(compiled).items() if "componentRef" in t
                  and compiled["components"][t["componentRef"]["name"]].get("executorLabel")}
    assert step_tasks == {f"{step}-op" for step in STEPS}
    assert len(executors) == 5


def test_each_task_runs_in_its_step_image(compiled):
    executors = compiled["deploymentSpec"]["executors"]
    for step in STEPS:
        container = executors[f"exec-{step}-op"]["container"]
        assert container["image"] == image_for(step), step
        # Lightweight component without a runtime pip install of kfp: the image has it.
        assert "pip install" not in " ".join(container["command"]), step


def test_deploy_is_inside_the_gate_condition(compiled):
    root_tasks = compiled["root"]["dag"]["tasks"]
    assert "deploy-op" not in root_tasks
    conditions = [t for t in root_tasks.values() if t.get("triggerPolicy", {}).get("condition")]
    assert len(conditions) == 1
    condition = conditions[0]
    assert "train-op" in condition["dependentTasks"]
    assert "pipelinechannel--train-op-Output" in condition["triggerPolicy"]["condition"]
    assert "== true" in condition["triggerPolicy"]["condition"]
    inner = compiled["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"deploy-op"}


def test_data_flows_between_steps(compiled):
    tasks = compiled["root"]["dag"]["tasks"]
    arts = tasks["train-op"]["inputs"]["artifacts"]
    assert arts["features"]["taskOutputArtifact"]["producerTask"] == "transform-op"
    assert arts["best_params"]["taskOutputArtifact"]["producerTask"] == "tune-op"
    assert tasks["transform-op"]["inputs"]["artifacts"]["raw"]["taskOutputArtifact"][
        "producerTask"] == "ingest-op"


def test_script_entry_point_compiles(tmp_path):
    out = tmp_path / "out.yaml"
    subprocess.run([sys.executable, "pipeline/crypto_pipeline.py", str(out)], check=True,
                   capture_output=True, cwd=PROJECT_ROOT)
    assert yaml.safe_load(out.read_text())["pipelineInfo"]["name"] == "crypto-forecast"


def test_module_cli_compiles(tmp_path):
    out = tmp_path / "cli.yaml"
    subprocess.run([sys.executable, "-m", "pipeline", "compile", "--output", str(out)],
                   check=True, capture_output=True, cwd=PROJECT_ROOT)
    assert "deploymentSpec" in yaml.safe_load(out.read_text())
