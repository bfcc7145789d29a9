"""The KFP wrapper: compiles in a pipeline, and its body deploys and records."""

# No "from __future__ import annotations": KFP reads the pipeline function's annotations.

import json

import pytest
import yaml
from kfp import compiler, dsl

from components.common.results import ParameterError
from components.deploy.repository import ModelRepository
from components.images import image_refs
from pipeline.crypto_pipeline import step_component

IMAGE = image_refs()["deploy"]
deploy_op = step_component("deploy", IMAGE)


@dsl.pipeline(name="deploy-only")
def _deploy_pipeline(model_uri: str, model_repository: str, target: str = "local"):
    model = dsl.importer(
        artifact_uri=model_uri,
        artifact_class=dsl.Model,
        reimport=False,
        metadata={"version": "1", "mae_ratio": 0.9, "passed_gate": True},
    )
    deploy_op(
        model=model.output,
        target=target,
        model_repository=model_repository,
        model_name="btc",
        source_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    )


def test_compiles_with_the_deploy_image(tmp_path):
    out = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(_deploy_pipeline, str(out))
    spec = yaml.safe_load(out.read_text())

    executor = spec["deploymentSpec"]["executors"]["exec-deploy-op"]["container"]
    assert executor["image"] == IMAGE
    assert "pip install" not in " ".join(executor["command"]), "kfp must come from the image"
    component = spec["components"]["comp-deploy-op"]
    assert component["inputDefinitions"]["artifacts"]["model"]["artifactType"]["schemaTitle"] == (
        "system.Model"
    )
    assert set(component["inputDefinitions"]["parameters"]) == {
        "target",
        "model_repository",
        "model_name",
        "source_run",
        "image",
        "vertex_project",
        "vertex_region",
        "vertex_endpoint",
        "serving_machine_type",
        "serving_min_replicas",
        "serving_max_replicas",
        "serving_service_account",
        "serving_namespace",
        "serving_k8s_service_account",
    }
    assert (
        component["outputDefinitions"]["artifacts"]["deployment"]["artifactType"]["schemaTitle"]
        == "system.Artifact"
    )


def test_body_deploys_and_writes_the_record(model_dir, repo, tmp_path):
    # Train's model metadata: the version, the gate's figures and the quantile scores.
    train_metadata = {
        "mae_ratio": 0.9,
        "passed_gate": True,
        "quantile_levels": "0.05,0.25,0.5,0.75,0.95",
        "pinball_ratio": 0.97,
        "coverage_90": 0.9,
    }
    model = dsl.Model(uri=str(model_dir("v1")), metadata={"version": "1", **train_metadata})
    deployment = dsl.Artifact(uri=str(tmp_path / "deployment.json"))
    deploy_op.python_func(
        model=model,
        target="local",
        model_repository=str(repo),
        model_name="btc",
        deployment=deployment,
        source_run="run-7",
    )

    record = json.loads((tmp_path / "deployment.json").read_text())
    assert record["version"] == "1" and record["model_name"] == "btc"
    assert record["record"]["metrics"] == train_metadata
    assert record["record"]["quantile_levels"] == [0.05, 0.25, 0.5, 0.75, 0.95]
    assert record["record"]["source_run"] == "run-7"
    assert deployment.metadata["version"] == "1"
    assert deployment.metadata["quantile_levels"] == "0.05,0.25,0.5,0.75,0.95"
    assert deployment.metadata["path"] == str(repo / "btc" / "1")
    assert ModelRepository(repo, "btc").current() == "1"


def test_body_refuses_a_cloud_target_without_its_settings(model_dir, repo, tmp_path):
    model = dsl.Model(uri=str(model_dir("v1")), metadata={"version": "1"})
    deployment = dsl.Artifact(uri=str(tmp_path / "deployment.json"))
    with pytest.raises(ParameterError) as refused:
        deploy_op.python_func(
            model=model,
            target="vertex",
            model_repository=str(repo),
            model_name="btc",
            deployment=deployment,
            image="localhost/crypto-kfp/deploy:dev",
            serving_min_replicas=3,
            serving_max_replicas=2,
        )
    message = str(refused.value)
    for name in (
        "model_repository must be gs://",
        "pinned by digest",
        "vertex_project is required",
        "vertex_region is required",
        "serving_service_account is required",
        "serving_max_replicas (2) must be at least serving_min_replicas (3)",
    ):
        assert name in message
    assert not (tmp_path / "deployment.json").exists()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_runs_under_kfp_local(model_dir, repo, tmp_path):
    """The wrapper as kfp.local.SubprocessRunner runs it (this venv, no image)."""
    from kfp import local
    from kfp.local.config import LocalExecutionConfig

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "pipeline_root"),
        raise_on_error=True,
    )
    try:
        _deploy_pipeline(model_uri=str(model_dir("v1")), model_repository=str(repo))
    finally:
        LocalExecutionConfig.instance = None  # do not leak kfp.local state into other tests
    store = ModelRepository(repo, "btc")
    assert store.current() == "1"
    assert store.record("1")["metrics"] == {"mae_ratio": 0.9, "passed_gate": True}
    assert store.record("1")["source_run"]
    (deployment,) = (tmp_path / "pipeline_root").glob("*/deploy-op/deployment")
    assert json.loads(deployment.read_text())["version"] == "1"
