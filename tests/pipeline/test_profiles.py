"""The gcp profile: pipeline arguments from Pulumi stack outputs, and reading those outputs."""

import ast
import io
import json
import sys
from pathlib import Path

import pytest

from components.common.placement import PIPELINES_LABEL, PIPELINES_TAINT
from pipeline.profiles import (
    REQUIRED_OUTPUTS,
    StackOutputsError,
    cloud_warnings,
    gcp_arguments,
    load_stack_outputs,
    validate_cloud_arguments,
    validate_stack_outputs,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG_SECRET = "LS0tLS1CRUdJTi-fake-ca-data-that-must-never-be-printed"


def stack_outputs() -> dict:
    """What `pulumi stack output --json` prints for a dev stack (secrets masked)."""
    return {
        "project": "acme-forecasting",
        "region": "europe-west4",
        "zone": "europe-west4-b",
        "cluster_location": "europe-west4-b",
        "cluster_name": "crypto-kfp-gke",
        "kubeconfig": "[secret]",
        "kfp_namespace": "kubeflow",
        "kfp_version": "2.17.0",
        "pipeline_root": "gs://crypto-kfp-artifacts-acme-forecasting/pipeline-root",
        "registry_url": "europe-west4-docker.pkg.dev/acme-forecasting/crypto-kfp",
        "pipelines_node_selector": {"pool": "pipelines"},
        "pipelines_toleration": {
            "key": "pool",
            "operator": "Equal",
            "value": "pipelines",
            "effect": "NoSchedule",
        },
        "protect": False,
        "raw_bucket": "gs://crypto-kfp-raw-acme-forecasting",
        "artifacts_bucket": "gs://crypto-kfp-artifacts-acme-forecasting",
        "dataflow_temp_bucket": "gs://crypto-kfp-dataflow-temp-acme-forecasting",
        "dataflow_staging_bucket": "gs://crypto-kfp-dataflow-staging-acme-forecasting",
        "models_bucket": "gs://crypto-kfp-models-acme-forecasting",
        "pipeline_service_account": "crypto-kfp-pipeline@acme-forecasting.iam.gserviceaccount.com",
        "dataflow_service_account": "crypto-kfp-dataflow@acme-forecasting.iam.gserviceaccount.com",
        "vertex_service_account": "crypto-kfp-vertex@acme-forecasting.iam.gserviceaccount.com",
        "node_service_account": "crypto-kfp-nodes@acme-forecasting.iam.gserviceaccount.com",
        "kfp_ui_service_account": "crypto-kfp-kfp-ui@acme-forecasting.iam.gserviceaccount.com",
        "dataflow_subnetwork": "regions/europe-west4/subnetworks/crypto-kfp-subnet",
        "labels": {"app": "crypto-kfp", "stack": "dev"},
        "vertex_staging_uri": "gs://crypto-kfp-artifacts-acme-forecasting/vertex-staging",
        "serving_namespace": "serving",
        "serving_k8s_service_account": "model-server",
        "serving_service_account": "crypto-kfp-serving@acme-forecasting.iam.gserviceaccount.com",
        "vertex_endpoint": "crypto-kfp-endpoint",
    }


def test_gcp_arguments_map_buckets_and_cloud_backends():
    assert gcp_arguments(stack_outputs()) == {
        "lake": "gs://crypto-kfp-raw-acme-forecasting",
        "model_repository": "gs://crypto-kfp-models-acme-forecasting/repository",
        "runner": "dataflow",
        "dataflow_project": "acme-forecasting",
        "dataflow_region": "europe-west4",
        "dataflow_temp_location": "gs://crypto-kfp-dataflow-temp-acme-forecasting/temp",
        "dataflow_staging_location": "gs://crypto-kfp-dataflow-staging-acme-forecasting/staging",
        "dataflow_service_account": "crypto-kfp-dataflow@acme-forecasting.iam.gserviceaccount.com",
        "dataflow_subnetwork": "regions/europe-west4/subnetworks/crypto-kfp-subnet",
        "dataflow_labels": '{"app": "crypto-kfp", "stack": "dev", "step": "transform"}',
        "tune_backend": "vertex",
        "vertex_project": "acme-forecasting",
        "vertex_region": "europe-west4",
        "vertex_service_account": "crypto-kfp-vertex@acme-forecasting.iam.gserviceaccount.com",
        "vertex_staging_bucket": "gs://crypto-kfp-artifacts-acme-forecasting/vertex-staging",
        "deploy_target": "gke",
        "serving_namespace": "serving",
        "serving_k8s_service_account": "model-server",
        "serving_service_account": "crypto-kfp-serving@acme-forecasting.iam.gserviceaccount.com",
        "vertex_endpoint": "crypto-kfp-endpoint",
    }


@pytest.mark.parametrize("target", ["gke", "vertex"])
def test_gcp_deploy_arguments_pass_the_deploy_steps_own_check(target):
    from components.deploy import check_parameters

    a = gcp_arguments(stack_outputs()) | {"deploy_target": target}
    image = "europe-west4-docker.pkg.dev/acme/crypto-kfp/deploy@sha256:" + "d" * 64
    settings = {
        k: v for k, v in a.items() if k.startswith(("serving_", "vertex_project", "vertex_reg"))
    }
    problems = check_parameters(
        target=a["deploy_target"],
        model_repository=a["model_repository"],
        image=image,
        **settings,
    )
    assert problems == {}


def test_gcp_dataflow_arguments_pass_the_transforms_own_validation():
    from components.transform import dataflow_options

    a = gcp_arguments(stack_outputs())
    dataflow_options(
        project=a["dataflow_project"],
        region=a["dataflow_region"],
        temp_location=a["dataflow_temp_location"],
        staging_location=a["dataflow_staging_location"],
        service_account_email=a["dataflow_service_account"],
        subnetwork=a["dataflow_subnetwork"],
        sdk_container_image="europe-west4-docker.pkg.dev/acme/crypto-kfp/transform-worker@sha256:"
        + "e" * 64,
        labels=json.loads(a["dataflow_labels"]),
    )


def test_gcp_arguments_are_valid_cloud_arguments():
    validate_stack_outputs(stack_outputs())
    validate_cloud_arguments(gcp_arguments(stack_outputs()))


@pytest.mark.parametrize(
    "key",
    [
        "raw_bucket",
        "models_bucket",
        "dataflow_subnetwork",
        "dataflow_service_account",
        "vertex_staging_uri",
        "vertex_service_account",
        "serving_namespace",
        "serving_k8s_service_account",
        "serving_service_account",
        "vertex_endpoint",
    ],
)
def test_gcp_arguments_name_a_missing_output(key):
    outputs = stack_outputs()
    del outputs[key]
    with pytest.raises(StackOutputsError, match=key) as err:
        gcp_arguments(outputs)
    assert "pulumi up" in str(err.value) and "--stack" in str(err.value)


def test_validation_names_every_missing_output():
    outputs = {k: v for k, v in stack_outputs().items() if k not in REQUIRED_OUTPUTS}
    with pytest.raises(StackOutputsError) as err:
        validate_stack_outputs(outputs)
    message = str(err.value)
    assert all(key in message for key in REQUIRED_OUTPUTS), message
    assert "pulumi up" in message and "--stack-outputs FILE" in message


def test_validation_rejects_a_bucket_that_is_not_a_gs_uri():
    outputs = stack_outputs() | {"models_bucket": "crypto-kfp-models"}
    with pytest.raises(StackOutputsError, match="models_bucket should be a gs:// URI"):
        validate_stack_outputs(outputs)


def test_validation_rejects_a_pool_the_pipeline_does_not_select():
    outputs = stack_outputs() | {"pipelines_node_selector": {"pool": "batch"}}
    with pytest.raises(StackOutputsError, match="never be scheduled"):
        validate_stack_outputs(outputs)
    outputs = stack_outputs()
    outputs["pipelines_toleration"] = outputs["pipelines_toleration"] | {"value": "batch"}
    with pytest.raises(StackOutputsError, match="never be scheduled"):
        validate_stack_outputs(outputs)


def test_infra_creates_the_pool_the_pipeline_selects():
    """infra creates the pipelines pool from the same constants the pipeline selects."""
    tree = ast.parse((PROJECT_ROOT / "infra" / "cluster.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "components.common.placement"
        for alias in node.names
    }
    literals = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in ("PIPELINES_LABEL", "PIPELINES_TAINT")
    }
    for name, ours in (("PIPELINES_LABEL", PIPELINES_LABEL), ("PIPELINES_TAINT", PIPELINES_TAINT)):
        assert name in imported or literals.get(name) == ours, name


@pytest.mark.parametrize(
    "override, message",
    [
        ({"lake": "/home/me/lake"}, "lake must be a gs:// URI"),
        ({"model_repository": "models"}, "model_repository must be a gs:// URI"),
        ({"source": "data/crypto-markets.csv"}, "cannot read this machine's files"),
        ({"deploy_target": "local"}, "lost when the pod ends"),
    ],
)
def test_cloud_arguments_refuse_what_a_pod_would_lose(override, message):
    with pytest.raises(StackOutputsError, match=message):
        validate_cloud_arguments(gcp_arguments(stack_outputs()) | override)


def test_remote_sources_are_fine_on_the_cluster():
    for source in (
        "gs://crypto-kfp-raw-acme-forecasting/uploads/mine.csv",
        "https://example.org/crypto.csv",
    ):
        validate_cloud_arguments(gcp_arguments(stack_outputs()) | {"source": source})


def test_warnings_name_the_hourly_cost_of_a_vertex_endpoint():
    assert cloud_warnings(gcp_arguments(stack_outputs())) == []  # gke: the existing cluster
    (warning,) = cloud_warnings(gcp_arguments(stack_outputs()) | {"deploy_target": "vertex"})
    assert "billed by the hour" in warning and "make destroy" in warning


# -- load_stack_outputs -------------------------------------------------------------------


def test_load_from_file_drops_secrets(tmp_path):
    revealed = stack_outputs() | {
        "kubeconfig": KUBECONFIG_SECRET,
        "service_account_keys": {"pipeline": "private-key"},
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(revealed))
    loaded = load_stack_outputs(str(path), None)
    assert "kubeconfig" not in loaded and "service_account_keys" not in loaded
    assert loaded["registry_url"] == stack_outputs()["registry_url"]
    assert KUBECONFIG_SECRET not in repr(loaded)


def test_load_from_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(stack_outputs())))
    assert load_stack_outputs("-", None)["raw_bucket"] == stack_outputs()["raw_bucket"]


def test_load_errors_name_the_file_and_never_echo_its_content(tmp_path):
    with pytest.raises(StackOutputsError, match="not found"):
        load_stack_outputs(str(tmp_path / "missing.json"), None)
    broken = tmp_path / "broken.json"
    broken.write_text('{"kubeconfig": "' + KUBECONFIG_SECRET + '", ')
    with pytest.raises(StackOutputsError, match="not JSON") as err:
        load_stack_outputs(str(broken), None)
    assert KUBECONFIG_SECRET not in str(err.value)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(StackOutputsError, match="not a JSON object"):
        load_stack_outputs(str(listed), None)


def _fake_pulumi(bin_dir: Path, *, stdout: str = "", stderr: str = "", exit_code: int = 0) -> Path:
    """A `pulumi` executable that records its arguments and prints what it is told to."""
    bin_dir.mkdir(exist_ok=True)
    record = bin_dir / "argv.json"
    script = bin_dir / "pulumi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return record


def test_load_runs_the_pulumi_cli_without_secrets(tmp_path, monkeypatch):
    record = _fake_pulumi(tmp_path / "bin", stdout=json.dumps(stack_outputs()))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    loaded = load_stack_outputs(None, "dev")
    assert json.loads(record.read_text()) == ["stack", "output", "--json", "--stack", "dev"]
    assert loaded["models_bucket"] == stack_outputs()["models_bucket"]
    assert "kubeconfig" not in loaded

    load_stack_outputs(None, None)
    assert json.loads(record.read_text()) == ["stack", "output", "--json"]


def test_a_failing_pulumi_cli_is_reported_with_its_message(tmp_path, monkeypatch):
    _fake_pulumi(tmp_path / "bin", stderr="error: no stack named 'prod' found\n", exit_code=255)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(StackOutputsError) as err:
        load_stack_outputs(None, "prod")
    message = str(err.value)
    assert "no stack named 'prod' found" in message
    assert "pulumi up" in message and "--stack-outputs FILE" in message


def test_missing_pulumi_cli_says_how_to_install_or_what_to_pass(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(StackOutputsError) as err:
        load_stack_outputs(None, None)
    message = str(err.value)
    assert "Pulumi CLI is not on PATH" in message
    assert "pulumi.com/docs/install" in message and "--stack-outputs FILE" in message


def test_dry_run_prints_the_dataflow_and_vertex_settings_from_the_stack(tmp_path):
    import subprocess

    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(stack_outputs()))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--dry-run", "--allow-unpinned",
         "--stack-outputs", str(outputs_file), "-o", str(tmp_path / "p.yaml")],
        capture_output=True, text=True, cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Dataflow (transform):" in out and "Vertex AI (tune):" in out
    assert "Deploy (GKE):\n    serving_namespace = 'serving'\n" in out
    assert "    serving_k8s_service_account = 'model-server'" in out
    for line in (
        "dataflow_subnetwork = 'regions/europe-west4/subnetworks/crypto-kfp-subnet'",
        "dataflow_service_account = 'crypto-kfp-dataflow@acme-forecasting.iam.gserviceaccount.com'",
        "vertex_staging_bucket = 'gs://crypto-kfp-artifacts-acme-forecasting/vertex-staging'",
        "vertex_service_account = 'crypto-kfp-vertex@acme-forecasting.iam.gserviceaccount.com'",
    ):
        assert line in out, line
    local = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--dry-run", "--allow-unpinned",
         "--stack-outputs", str(outputs_file), "-o", str(tmp_path / "q.yaml"),
         "--runner", "local", "--tune-backend", "optuna"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert "Dataflow (transform): not used" in local.stdout
    assert "Vertex AI (tune): not used" in local.stdout
    vertex = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--dry-run", "--allow-unpinned",
         "--stack-outputs", str(outputs_file), "-o", str(tmp_path / "r.yaml"),
         "--deploy-target", "vertex"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip
    assert vertex.returncode == 0, vertex.stderr
    assert "Deploy (Vertex AI):" in vertex.stdout
    assert "vertex_endpoint = 'crypto-kfp-endpoint'" in vertex.stdout
    assert "billed by the hour" in vertex.stderr
