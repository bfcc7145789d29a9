"""tune_op compiles in a tiny pipeline, on the tune image, with the typed outputs."""

import yaml
from kfp import compiler, dsl
from kfp.dsl import Artifact, Dataset, Output

from components.images import image_refs
from pipeline.crypto_pipeline import step_component

IMAGE = image_refs()["tune"]
tune_op = step_component("tune", IMAGE)


@dsl.component(base_image="python:3.11-slim")
def _fake_transform(features: Output[Dataset], stats: Output[Artifact]):
    pass


#: The Vertex AI settings a local run passes (unused with backend="optuna").
LOCAL_VERTEX = {
    "parallel_trials": 4,
    "vertex_project": "",
    "vertex_region": "",
    "vertex_service_account": "",
    "vertex_staging_bucket": "",
    "vertex_machine_type": "n1-standard-4",
    "vertex_image": "",
}


@dsl.pipeline(name="tune-only")
def _pipeline(n_trials: int = 3):
    upstream = _fake_transform()
    tune_op(
        features=upstream.outputs["features"],
        stats=upstream.outputs["stats"],
        n_trials=n_trials,
        timeout_s=60,
        max_epochs=2,
        seed=0,
        backend="optuna",
        quantile_levels="0.05,0.25,0.5,0.75,0.95",
        **LOCAL_VERTEX,
    )


def test_tune_op_compiles(tmp_path):
    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(_pipeline, str(path))
    spec = yaml.safe_load(path.read_text())
    executors = spec["deploymentSpec"]["executors"]
    tune_exec = next(e for name, e in executors.items() if "tune" in name)
    assert tune_exec["container"]["image"] == IMAGE
    assert "pip install" not in " ".join(
        tune_exec["container"]["command"]
    )  # install_kfp_package=False
    outputs = spec["components"]["comp-tune-op"]["outputDefinitions"]["artifacts"]
    assert {k: v["artifactType"]["schemaTitle"] for k, v in outputs.items()} == {
        "best_params": "system.Artifact",
        "metrics": "system.Metrics",
        "trials_table": "system.Markdown",
    }
    inputs = spec["components"]["comp-tune-op"]["inputDefinitions"]
    assert set(inputs["parameters"]) == {
        "n_trials",
        "timeout_s",
        "max_epochs",
        "seed",
        "backend",
        "quantile_levels",
        *LOCAL_VERTEX,
    }
    assert set(inputs["artifacts"]) == {"features", "stats"}
