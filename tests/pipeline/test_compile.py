"""The compiled pipeline YAML is the deployable unit: check its structure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.common.placement import PIPELINES_LABEL, PIPELINES_TAINT
from components.images import STEPS, ImagesError, image_refs
from pipeline.crypto_pipeline import compile_pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _documents(path: Path) -> list[dict]:
    """The pipeline spec, then the platform spec (node placement) when there is one."""
    return list(yaml.safe_load_all(path.read_text()))


#: Images of a build: digests, in a registry the environment knows nothing of.
IMAGES = {
    step: f"europe-west1-docker.pkg.dev/p/repo/{step}@sha256:{str(i) * 64}"
    for i, step in enumerate(STEPS, start=1)
}


def _executor_images(document: dict) -> dict[str, str]:
    return {
        name.removeprefix("exec-").removesuffix("-op"): spec["container"]["image"]
        for name, spec in document["deploymentSpec"]["executors"].items()
    }


@pytest.fixture(scope="module")
def compiled_documents(tmp_path_factory):
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    return _documents(compile_pipeline(path, IMAGES))


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
    step_tasks = {
        name
        for name, t in _all_tasks(compiled).items()
        if "componentRef" in t
        and compiled["components"][t["componentRef"]["name"]].get("executorLabel")
    }
    assert step_tasks == {f"{step}-op" for step in STEPS}
    assert len(executors) == 5


def test_each_task_runs_in_its_step_image(compiled):
    executors = compiled["deploymentSpec"]["executors"]
    for step in STEPS:
        container = executors[f"exec-{step}-op"]["container"]
        assert container["image"] == IMAGES[step], step
        # Lightweight component without a runtime pip install of kfp: the image has it.
        assert "pip install" not in " ".join(container["command"]), step
    images = [executors[f"exec-{step}-op"]["container"]["image"] for step in STEPS]
    assert len(set(images)) == len(STEPS)


def test_without_images_every_step_gets_a_default_name(tmp_path):
    compiled = _documents(compile_pipeline(tmp_path / "p.yaml"))[0]
    assert _executor_images(compiled) == {step: image_refs()[step] for step in STEPS}


def test_images_mapping_must_name_every_step(tmp_path):
    with pytest.raises(ImagesError, match="no image for step"):
        compile_pipeline(tmp_path / "p.yaml", {"ingest": "r/ingest:1"})


def test_no_environment_variable_changes_an_image(tmp_path, monkeypatch):
    for name in ("CRYPTO_KFP_REGISTRY", "CRYPTO_KFP_IMAGE_TAG", "REGISTRY", "TAG"):
        monkeypatch.setenv(name, "elsewhere.example/x")
    compiled = _documents(compile_pipeline(tmp_path / "p.yaml", IMAGES))[0]
    assert _executor_images(compiled) == IMAGES


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
    assert (
        tasks["transform-op"]["inputs"]["artifacts"]["raw"]["taskOutputArtifact"]["producerTask"]
        == "ingest-op"
    )


def test_every_step_runs_on_the_pipelines_pool(compiled_documents):
    assert len(compiled_documents) == 2, "no platform spec: steps would not be placed"
    executors = compiled_documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {f"exec-{step}-op" for step in STEPS}
    toleration = {
        "key": PIPELINES_TAINT["key"],
        "operator": "Equal",
        "value": PIPELINES_TAINT["value"],
        "effect": "NoSchedule",
    }
    for name, config in executors.items():
        assert config["nodeSelector"]["labels"] == PIPELINES_LABEL, name
        assert config["tolerations"] == [toleration], name


def _compile_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "compile", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
    )


def test_module_cli_compiles_with_an_images_file(tmp_path):
    images_file = tmp_path / "images.json"
    images_file.write_text(json.dumps(IMAGES))
    out = tmp_path / "cli.yaml"
    done = _compile_cli("--output", str(out), "--images", str(images_file))
    assert done.returncode == 0, done.stderr
    assert _executor_images(_documents(out)[0]) == IMAGES


def test_module_cli_compiles_with_registry_and_tag(tmp_path):
    out = tmp_path / "cli.yaml"
    done = _compile_cli("--output", str(out), "--registry", "eu.gcr.io/p/r", "--tag", "abc123")
    assert done.returncode == 0, done.stderr
    assert _executor_images(_documents(out)[0]) == {
        step: f"eu.gcr.io/p/r/{step}:abc123" for step in STEPS
    }


def test_module_cli_refuses_a_broken_images_file(tmp_path):
    images_file = tmp_path / "images.json"
    images_file.write_text(json.dumps({"ingest": "r/ingest:1", "serve": "r/x:1"}))
    done = _compile_cli("--output", str(tmp_path / "x.yaml"), "--images", str(images_file))
    assert done.returncode == 2
    assert "no image for step(s): transform, tune, train, deploy" in done.stderr
    assert not (tmp_path / "x.yaml").exists()


def _executor_tasks(spec: dict) -> dict[str, dict]:
    return {name: t for name, t in _all_tasks(spec).items() if name.endswith("-op")}


def test_every_step_asks_for_cpu_and_memory(compiled):
    from pipeline.crypto_pipeline import RESOURCES

    executors = compiled["deploymentSpec"]["executors"]
    for step in STEPS:
        resources = executors[f"exec-{step}-op"]["container"]["resources"]
        cpu_request, cpu_limit, memory_request, memory_limit = RESOURCES[step]
        assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"]) == (
            cpu_request,
            cpu_limit,
        ), step
        assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == (
            memory_request,
            memory_limit,
        ), step
        assert float(resources["cpuRequest"]) <= float(resources["cpuLimit"]), step


def test_every_task_retries_with_backoff_for_preempted_spot_nodes(compiled):
    for name, task in _executor_tasks(compiled).items():
        policy = task["retryPolicy"]
        assert policy["maxRetryCount"] == 2, name
        assert policy["backoffDuration"] == "60s" and policy["backoffFactor"] == 2.0, name


def test_deploy_is_never_cached(compiled):
    caching = {
        n: t.get("cachingOptions", {}).get("enableCache", False)
        for n, t in _executor_tasks(compiled).items()
    }
    assert caching.pop("deploy-op") is False
    # Ingest re-reads the source every run: a refreshed source under the same name (a
    # scheduled run's arguments are fixed) must never be hidden by a cache hit.
    assert caching.pop("ingest-op") is False
    assert set(caching.values()) == {True}


def test_a_local_compile_has_no_retries(tmp_path):
    """kfp.local honours retry policies; a local failure is not a preemption."""
    local = _documents(compile_pipeline(tmp_path / "local.yaml", IMAGES, retries=False))[0]
    assert all("retryPolicy" not in t for t in _executor_tasks(local).values())


def test_transform_gets_the_dataflow_worker_image_and_every_dataflow_parameter(tmp_path):
    worker = "europe-west1-docker.pkg.dev/p/images/transform-worker@sha256:" + "c" * 64
    images = {**image_refs("europe-west1-docker.pkg.dev/p/images", "t"), "transform-worker": worker}
    spec = _documents(compile_pipeline(tmp_path / "p.yaml", images))[0]
    task = _all_tasks(spec)["transform-op"]
    inputs = task["inputs"]["parameters"]
    assert inputs["dataflow_worker_image"]["runtimeValue"]["constant"] == worker
    names = [n for n in spec["root"]["inputDefinitions"]["parameters"] if n.startswith("dataflow_")]
    assert len(names) == 10
    for name in names:
        assert inputs[name]["componentInputParameter"] == name, name


def test_deploy_runs_its_own_image_as_the_server_and_gets_every_serving_parameter(compiled):
    inputs = _all_tasks(compiled)["deploy-op"]["inputs"]["parameters"]
    assert inputs["image"]["runtimeValue"]["constant"] == IMAGES["deploy"]
    names = ("vertex_project", "vertex_region", "vertex_endpoint", "serving_machine_type",
             "serving_min_replicas", "serving_max_replicas", "serving_service_account",
             "serving_namespace", "serving_k8s_service_account")  # fmt: skip
    for name in names:
        # inside the gate's condition the pipeline's parameters arrive as pipeline channels
        assert inputs[name] == {"componentInputParameter": f"pipelinechannel--{name}"}, name


def test_train_gets_the_data_the_champion_and_the_lineage(compiled):
    from pipeline.revision import git_revision

    train = _executor_tasks(compiled)["train-op"]["inputs"]
    assert train["artifacts"]["raw"]["taskOutputArtifact"] == {
        "outputArtifactKey": "raw",
        "producerTask": "ingest-op",
    }
    params = train["parameters"]
    for name in ("model_repository", "min_improvement", "significance"):
        assert params[name] == {"componentInputParameter": name}, name
    assert params["deploy_target"] == {"componentInputParameter": "deploy_target"}
    # where the champion is read: the deploy target's own settings
    for name in ("serving_namespace", "vertex_project", "vertex_region", "vertex_endpoint"):
        assert params[name] == {"componentInputParameter": name}, name
    lineage = json.loads(params["lineage"]["runtimeValue"]["constant"])
    assert lineage == {"git revision": git_revision(), "images": IMAGES}


def test_the_quantile_parameters_reach_tune_and_train(compiled):
    """quantile_levels feeds both tune (what it selects on) and train; the gate's two
    parameters feed train; each is a pipeline parameter with its step's default."""
    tasks = _executor_tasks(compiled)
    tune_params = tasks["tune-op"]["inputs"]["parameters"]
    train_params = tasks["train-op"]["inputs"]["parameters"]
    assert tune_params["quantile_levels"] == {"componentInputParameter": "quantile_levels"}
    for name in ("quantile_levels", "gate_metric", "coverage_tolerance"):
        assert train_params[name] == {"componentInputParameter": name}, name
    root = compiled["root"]["inputDefinitions"]["parameters"]
    assert root["quantile_levels"]["defaultValue"] == "0.05,0.25,0.5,0.75,0.95"
    assert root["gate_metric"]["defaultValue"] == "pinball"
    assert root["coverage_tolerance"]["defaultValue"] == 0.05
