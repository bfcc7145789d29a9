"""The compiled pipeline YAML is the deployable unit: check its structure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.images import STEPS, image_for
from components.common.placement import PIPELINES_LABEL, PIPELINES_TAINT
from pipeline.crypto_pipeline import compile_pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _documents(path: Path) -> list[dict]:
    """The pipeline spec, then the platform spec (node placement) when there is one."""
    return list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module")
def compiled_documents(tmp_path_factory):
    return _documents(compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml"))


@pytest.fixture(scope="module")
def compiled(compiled_documents):
    return compiled_documents[0]


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
    images = [executors[f"exec-{step}-op"]["container"]["image"] for step in STEPS]
    assert len(set(images)) == len(STEPS)
    for step, image in zip(STEPS, images, strict=True):
        assert image.rsplit(":", 1)[0].endswith(f"/{step}"), image


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


def test_every_step_runs_on_the_pipelines_pool(compiled_documents):
    assert len(compiled_documents) == 2, "no platform spec: steps would not be placed"
    executors = compiled_documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {f"exec-{step}-op" for step in STEPS}
    toleration = {"key": PIPELINES_TAINT["key"], "operator": "Equal",
                  "value": PIPELINES_TAINT["value"], "effect": "NoSchedule"}
    for name, config in executors.items():
        assert config["nodeSelector"]["labels"] == PIPELINES_LABEL, name
        assert config["tolerations"] == [toleration], name


def test_script_entry_point_compiles(tmp_path):
    out = tmp_path / "out.yaml"
    subprocess.run([sys.executable, "pipeline/crypto_pipeline.py", str(out)], check=True,
                   capture_output=True, cwd=PROJECT_ROOT)
    assert _documents(out)[0]["pipelineInfo"]["name"] == "crypto-forecast"


def test_module_cli_compiles(tmp_path):
    out = tmp_path / "cli.yaml"
    subprocess.run([sys.executable, "-m", "pipeline", "compile", "--output", str(out)],
                   check=True, capture_output=True, cwd=PROJECT_ROOT)
    assert "deploymentSpec" in _documents(out)[0]
