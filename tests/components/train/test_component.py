"""train_op compiles in a tiny pipeline with its gate output usable in dsl.If."""

import yaml
from kfp import compiler, dsl
from kfp.dsl import Artifact, Dataset, Output

from components.images import image_refs
from pipeline.crypto_pipeline import step_component

IMAGE = image_refs()["train"]
train_op = step_component("train", IMAGE)


@dsl.component(base_image="python:3.11-slim")
def _fake_upstream(
    features: Output[Dataset],
    stats: Output[Artifact],
    best_params: Output[Artifact],
    raw: Output[Dataset],
):
    pass


@dsl.component(base_image="python:3.11-slim")
def _after_gate(model: dsl.Input[dsl.Model]):
    pass


@dsl.pipeline(name="train-only")
def _pipeline(max_mae_ratio: float = 1.0):
    up = _fake_upstream()
    train = train_op(
        features=up.outputs["features"],
        stats=up.outputs["stats"],
        best_params=up.outputs["best_params"],
        epochs=2,
        seed=0,
        max_mae_ratio=max_mae_ratio,
        model_name="m",
        raw=up.outputs["raw"],
        model_repository="/repo",
        deploy_target="local",
        min_improvement=0.0,
        significance=0.05,
    )
    with dsl.If(train.outputs["Output"] == True):  # noqa: E712
        _after_gate(model=train.outputs["model"])


def test_train_op_compiles(tmp_path):
    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(_pipeline, str(path))
    spec = yaml.safe_load(path.read_text())
    executors = spec["deploymentSpec"]["executors"]
    train_exec = next(e for name, e in executors.items() if "train" in name)
    assert train_exec["container"]["image"] == IMAGE
    assert "pip install" not in " ".join(train_exec["container"]["command"])
    component = spec["components"]["comp-train-op"]
    outputs = component["outputDefinitions"]
    assert {k: v["artifactType"]["schemaTitle"] for k, v in outputs["artifacts"].items()} == {
        "model": "system.Model",
        "metrics": "system.Metrics",
        "report": "system.HTML",
    }
    assert {k: v["parameterType"] for k, v in outputs["parameters"].items()} == {
        "Output": "BOOLEAN",
    }
    inputs = component["inputDefinitions"]
    assert inputs["artifacts"]["raw"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert {"min_improvement", "significance", "lineage"} <= set(inputs["parameters"])
    assert "pipelinechannel--train-op-Output" in path.read_text().split("triggerPolicy", 1)[1]
