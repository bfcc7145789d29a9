"""The deploy step's run() with target vertex and gke, end to end on this machine: the
model is smoke-tested, published to the models bucket (gcp-storage-emulator) and deployed
with the real clients at the loopback stand-ins of Vertex AI and of the Kubernetes API
(the latter found through $KUBECONFIG, as from a laptop)."""

from __future__ import annotations

import json

import pytest

from components.deploy.deploy import DeployError
from components.deploy.deploy import run as deploy
from components.deploy.gke import VERSION_LABEL

from .conftest import LEVELS
from .kube_standin import pod, progressing, running, stuck
from .test_vertex import IMAGE, PARENT, vertex  # noqa: F401 (the fixture)

NAME = "btc-forecast"
DEPLOYMENT = f"/apis/apps/v1/namespaces/serving/deployments/{NAME}"


def _record(bucket, version: str) -> dict:
    return json.loads(
        bucket.blob(f"repository/{NAME}/{version}/deployment.json").download_as_bytes()
    )


def test_gke_publishes_then_rolls_out_each_version(bucket, model_dir, tmp_path, monkeypatch):
    root = f"gs://{bucket.name}/repository"
    with running(tmp_path) as (fake, kubeconfig):
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        common = {
            "target": "gke",
            "model_repository": root,
            "model_name": NAME,
            "image": IMAGE,
            "serving_max_replicas": 3,
            "deployment_path": tmp_path / "deployment.json",
        }
        first = deploy(str(model_dir("v1")), metrics={"mae_ratio": 0.9}, source_run="r1", **common)
        second = deploy(str(model_dir("v2")), source_run="r2", **common)
        hpa = fake.objects[
            f"/apis/autoscaling/v2/namespaces/serving/horizontalpodautoscalers/{NAME}"
        ]
        deployment = fake.objects[DEPLOYMENT]
    assert (first.version, second.version) == ("1", "2")
    assert first.path == f"{root}/{NAME}/1" and second.previous_version == "1"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE and container["args"][1] == f"{root}/{NAME}/2"
    assert deployment["spec"]["template"]["metadata"]["labels"][VERSION_LABEL] == "2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert bucket.blob(f"repository/{NAME}/2/saved_model.pb").exists()
    record = _record(bucket, "1")
    assert record["state"] == "published" and record["metrics"] == {"mae_ratio": 0.9}
    assert record["source_run"] == "r1" and record["target"] == "gke"
    assert record["quantile_levels"] == list(LEVELS)  # what the bucket's champion reader gets
    written = json.loads((tmp_path / "deployment.json").read_text())
    assert written["version"] == "2" and written["record"]["gke"]["rollout"]["available"] == 1
    assert len(written["record"]["smoke_predictions"]) > 0


def test_a_failed_rollout_is_a_deploy_error_that_names_the_published_version(
    bucket, model_dir, tmp_path, monkeypatch
):
    root = f"gs://{bucket.name}/repository"
    with running(tmp_path) as (fake, kubeconfig):
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        fake.rollout = [progressing, stuck]
        labels = {"app.kubernetes.io/name": NAME, VERSION_LABEL: "1"}
        fake.pods = [pod("p-1", labels, ("ErrImagePull", "denied"))]
        with pytest.raises(DeployError, match=r"version 1 is published at .*/1 but its gke.*"):
            deploy(
                str(model_dir("v1")),
                target="gke",
                model_repository=root,
                model_name=NAME,
                image=IMAGE,
            )


def test_a_broken_model_is_refused_before_anything_is_published(bucket, model_dir):
    with pytest.raises(DeployError, match="smoke test; nothing published"):
        deploy(
            str(model_dir("broken")),
            target="gke",
            model_repository=f"gs://{bucket.name}/repository",
            model_name=NAME,
            image=IMAGE,
        )
    assert list(bucket.list_blobs()) == []


def test_vertex_publishes_then_uploads_that_folder_and_deploys_it(
    bucket,
    model_dir,
    vertex,  # noqa: F811
):
    fake, url = vertex
    root = f"gs://{bucket.name}/repository"
    common = {
        "target": "vertex",
        "model_repository": root,
        "model_name": NAME,
        "image": IMAGE,
        "vertex_project": "proj",
        "vertex_region": "europe-west1",
        "vertex_endpoint": "serving-endpoint",
        "serving_machine_type": "n1-standard-4",
        "serving_service_account": "serving@proj.iam.gserviceaccount.com",
        "vertex_api_endpoint": url,
    }
    first = deploy(str(model_dir("v1")), **common)
    second = deploy(str(model_dir("v2")), **common)
    uploads = [r[3]["model"] for r in fake.requests if r[1].endswith("models:upload")]
    assert [u["artifactUri"] for u in uploads] == [f"{root}/{NAME}/1", f"{root}/{NAME}/2"]
    assert all(u["containerSpec"]["imageUri"] == IMAGE for u in uploads)
    lookups = [r[2]["filter"] for r in fake.requests if r[:2] == ("GET", f"/v1/{PARENT}/endpoints")]
    assert lookups[0] == ['display_name="serving-endpoint"']
    deploys = [r[3] for r in fake.requests if r[1].endswith(":deployModel")]
    assert deploys[-1]["deployedModel"]["serviceAccount"] == "serving@proj.iam.gserviceaccount.com"
    assert deploys[-1]["deployedModel"]["dedicatedResources"]["machineSpec"] == {
        "machineType": "n1-standard-4"
    }
    assert deploys[-1]["trafficSplit"] == {"0": 100, first.record["vertex"]["deployed_model_id"]: 0}
    assert (
        second.record["vertex"]["previous_deployed_model_id"]
        == (first.record["vertex"]["deployed_model_id"])
    )
    assert _record(bucket, "2")["target"] == "vertex"
