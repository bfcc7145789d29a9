"""The KFP wrapper: compiles in a small pipeline and runs under kfp.local.

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations.
"""

import json
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl, local

from components.images import image_refs
from pipeline.crypto_pipeline import step_component

IMAGE = image_refs()["transform"]
transform_op = step_component("transform", IMAGE)


#: The Dataflow settings a local run passes (unused with runner="local").
LOCAL_DATAFLOW = {
    "dataflow_project": "",
    "dataflow_region": "",
    "dataflow_temp_location": "",
    "dataflow_staging_location": "",
    "dataflow_service_account": "",
    "dataflow_subnetwork": "",
    "dataflow_worker_image": "",
    "dataflow_machine_type": "",
    "dataflow_max_workers": 4,
    "dataflow_private_ips": True,
    "dataflow_labels": "",
}


@dsl.pipeline(name="transform-only")
def transform_pipeline(raw_uri: str, coins: str = "bitcoin"):
    raw = dsl.importer(artifact_uri=raw_uri, artifact_class=dsl.Dataset)
    transform_op(
        raw=raw.output,
        coins=coins,
        split="0.7,0.15,0.15",
        max_rejected_fraction=0.05,
        column_mapping="",
        runner="local",
        **LOCAL_DATAFLOW,
    )


def test_compiles_with_typed_artifacts_and_the_step_image(tmp_path: Path) -> None:
    package = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(transform_pipeline, str(package))
    spec = yaml.safe_load(package.read_text())
    component = spec["components"]["comp-transform-op"]
    outputs = {
        k: v["artifactType"]["schemaTitle"]
        for k, v in component["outputDefinitions"]["artifacts"].items()
    }
    assert outputs == {
        "features": "system.Dataset",
        "rejected": "system.Dataset",
        "stats": "system.Artifact",
        "metrics": "system.Metrics",
    }
    assert (
        component["inputDefinitions"]["artifacts"]["raw"]["artifactType"]["schemaTitle"]
        == "system.Dataset"
    )
    assert set(component["inputDefinitions"]["parameters"]) == {
        "coins",
        "split",
        "max_rejected_fraction",
        "column_mapping",
        "runner",
        *LOCAL_DATAFLOW,
    }
    container = spec["deploymentSpec"]["executors"]["exec-transform-op"]["container"]
    assert container["image"] == IMAGE
    assert "pip install" not in " ".join(container["command"])  # install_kfp_package=False


# SubprocessRunner warns that the step image is not used; running in this venv is the point.
@pytest.mark.filterwarnings("ignore:You may be attemping:RuntimeWarning")
def test_runs_under_kfp_local(bitcoin_csv: Path, tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    transform_pipeline(raw_uri=str(bitcoin_csv))
    (task_dir,) = (tmp_path / "root").glob("transform-only-*/transform-op")
    features = task_dir / "features"
    assert sorted(p.name for p in features.iterdir()) == [
        "eval-00000-of-00001.csv",
        "test-00000-of-00001.csv",
        "train-00000-of-00001.csv",
    ]
    stats = json.loads((task_dir / "stats").read_text())
    # 1,762 examples sized 1,233 / 264 / 265, less the purged last train and last eval day.
    assert stats["splits"]["train"]["rows"] == 1232
    assert (task_dir / "rejected").read_text() == "line,reason,raw\n"
    outputs = json.loads((task_dir / "executor_output.json").read_text())["artifacts"]
    metrics = outputs["metrics"]["artifacts"][0]["metadata"]
    assert metrics == {
        "train_rows": 1232,
        "eval_rows": 263,
        "test_rows": 265,
        "input_rows": 1793,
        "rejected_rows": 0,
        "rejected_fraction": 0.0,
        "duplicates": 0,
        "gaps": 0,
        "coins": 1,
    }
    assert outputs["features"]["artifacts"][0]["metadata"]["format"] == "csv"
