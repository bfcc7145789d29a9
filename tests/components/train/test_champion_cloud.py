"""train's champion on the cloud deploy targets, found through the real clients: the
kubernetes client at the loopback Kubernetes API stand-in (gke) or google-cloud-aiplatform
at the Vertex AI REST stand-in (vertex), and google-cloud-storage at gcp-storage-emulator
(the published version folder and its record). Per target: the first run (no champion),
the deploy step publishing and serving it, the identical re-run that is not deployed, and
a re-run on changed data that scores the served champion on its own test window."""

from __future__ import annotations

import json
import logging
import socket
import uuid

import numpy as np
import pytest

from components.common.results import ParameterError
from components.deploy import run as deploy
from components.deploy.gke import HISTORY
from components.train import __main__ as train_cli
from components.train.champion import ChampionError, find_champion
from components.train.evaluate import price_metrics
from components.train.export import load_serving_fn
from tests.components.deploy.conftest import gcs_emulator  # noqa: F401 (the fixture)
from tests.components.deploy.kube_standin import available, running
from tests.components.deploy.test_vertex import IMAGE, PARENT, vertex_standin
from tests.components.train.conftest import train_tiny

DATA_A, DATA_B = "a" * 64, "b" * 64
NAME = "tiny"
DEPLOYMENT = f"/apis/apps/v1/namespaces/serving/deployments/{NAME}"
VERTEX = {"vertex_project": "proj", "vertex_region": "europe-west1"}


def _bucket():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="champion-test", credentials=AnonymousCredentials())
    return client.create_bucket(f"models-{uuid.uuid4().hex[:12]}")


def _train(synthetic_data, out, version, data_sha256, **target):
    return train_tiny(synthetic_data, out, version, data_sha256, model_name=NAME, **target)


def _deploy(result, **target):
    """As the pipeline's deploy wrapper does: the model's metadata, minus the version."""
    metadata = dict(result.output_metadata()["model"])
    version = metadata.pop("version")
    return deploy(
        str(result.export_path.parent),
        model_name=NAME,
        metrics=metadata,
        version=version,
        image=IMAGE,
        **target,
    )


def _runs(synthetic_data, out, bucket, target: dict, deploy_settings: dict) -> dict:
    first = _train(synthetic_data, out, "1", DATA_A, **target)
    deployed = _deploy(first, target=target["deploy_target"],
                       model_repository=target["model_repository"], **deploy_settings)  # fmt: skip
    objects = sorted(b.name for b in bucket.list_blobs())
    again = _train(synthetic_data, out, "2", DATA_A, **target)
    changed = _train(synthetic_data, out, "3", DATA_B, **target)
    record = json.loads(bucket.blob(f"repository/{NAME}/1/deployment.json").download_as_bytes())
    return {
        "first": first,
        "deployed": deployed,
        "again": again,
        "changed": changed,
        "record": record,
        "objects_after_deploy": objects,
        "objects_at_end": sorted(b.name for b in bucket.list_blobs()),
    }


@pytest.fixture(scope="module")
def gke_runs(synthetic_data, gcs_emulator, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("champion-gke")
    bucket = _bucket()
    target = {"deploy_target": "gke", "model_repository": f"gs://{bucket.name}/repository"}
    with running(out) as (fake, kubeconfig), pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kubeconfig))
        fake.rollout = [available]
        runs = _runs(synthetic_data, out, bucket, target, {})
        runs["requests"] = list(fake.requests)
        runs["kubeconfig"] = kubeconfig
    return runs


@pytest.fixture(scope="module")
def vertex_runs(synthetic_data, gcs_emulator, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("champion-vertex")
    bucket = _bucket()
    with vertex_standin() as (fake, url):
        target = {
            "deploy_target": "vertex",
            "model_repository": f"gs://{bucket.name}/repository",
            "vertex_api_endpoint": url,
            **VERTEX,
        }
        settings = {
            **VERTEX,
            "vertex_api_endpoint": url,
            "serving_service_account": "serving@proj.iam.gserviceaccount.com",
        }
        runs = _runs(synthetic_data, out, bucket, target, settings)
        runs["requests"] = list(fake.requests)
        runs["fake"] = fake
    return runs


def _expected_champion_metrics(splits_and_stats, champion_export) -> dict:
    test = splits_and_stats[0]["test"]
    predicted = test.close * np.exp(load_serving_fn(champion_export)(test.features))
    return price_metrics(test.close, test.next_close(), predicted)


@pytest.fixture(params=["gke", "vertex"])
def runs(request, gke_runs, vertex_runs):
    return {"gke": gke_runs, "vertex": vertex_runs}[request.param]


def test_the_first_run_finds_no_champion_and_persistence_decides(runs):
    first = runs["first"]
    assert first.champion_version is None and first.gate_outcome == "no-champion-passed"
    assert first.metrics()["has_champion"] == 0.0


def test_the_published_record_carries_what_the_identical_model_rule_needs(runs):
    record, first = runs["record"], runs["first"]
    assert record["state"] == "published" and record["version"] == "1"
    metrics = record["metrics"]
    assert metrics["data_sha256"] == DATA_A
    assert metrics["training_fingerprint"] == first.training_fingerprint
    assert json.loads(metrics["hparams"]) == first.hparams
    assert metrics["model_mae"] == first.scores["model_mae"] and metrics["passed_gate"] is True


def test_the_identical_rerun_finds_the_served_champion_and_is_not_deployed(runs):
    again = runs["again"]
    assert again.champion_version == "1"
    assert again.passed_gate is False and again.gate_outcome == "identical-to-champion"
    assert "identical to champion version 1" in again.gate_reason
    assert again.metrics()["identical_to_champion"] == 1.0
    # the deploy step runs only when train's output is true; nothing more was published
    assert runs["objects_at_end"] == runs["objects_after_deploy"]


def test_the_served_champion_is_scored_on_this_runs_test_window(runs, splits_and_stats):
    changed = runs["changed"]
    assert changed.champion_version == "1" and changed.data_sha256 == DATA_B
    assert changed.gate_outcome in {"beats-both", "not-better-than-champion", "not-significant"}
    expected = _expected_champion_metrics(splits_and_stats, runs["first"].export_path)
    metrics = changed.metrics()
    for name in ("mae", "rmse", "mape"):
        assert metrics[f"champion_{name}"] == pytest.approx(expected[name], rel=1e-6)
    assert metrics["identical_to_champion"] == 0.0 and 0.0 <= metrics["dm_champion_p_value"] <= 1


def test_gke_reads_the_serving_deployment_with_the_pods_token(gke_runs):
    requests = gke_runs["requests"]
    # the first train's read (answered 404: no Deployment) and the two re-runs' reads
    reads = [requests[0], *requests[-2:]]
    assert [(r["method"], r["path"]) for r in reads] == [("GET", DEPLOYMENT)] * 3
    assert all(r["authorization"] == "Bearer standin-token" for r in reads)
    patches = [r for r in gke_runs["requests"] if r["method"] == "PATCH"]
    assert len(patches) == 4  # one deploy: Deployment, Service, HPA, PDB; train writes nothing
    assert gke_runs["deployed"].record["gke"]["uri"].endswith(f"/repository/{NAME}/1")


def test_vertex_reads_the_endpoint_and_the_registry_version(vertex_runs):
    calls = [(m, p.replace(f"/v1/{PARENT}", "")) for m, p, _, _ in vertex_runs["requests"]]
    model = vertex_runs["deployed"].record["vertex"]["model"].rsplit("/", 1)[1]
    assert calls[0] == ("GET", "/endpoints")  # the first train: no endpoint, none created
    assert calls.count(("GET", f"/models/{model}%401")) == 2  # the two re-runs
    assert sum(m == "POST" for m, _ in calls) == 3  # upload, create endpoint, deploy: once


def test_no_deployment_means_no_champion(gcs_emulator, tmp_path, caplog):  # noqa: F811
    with running(tmp_path) as (fake, kubeconfig), caplog.at_level(logging.INFO):
        settings = {"serving_namespace": "serving", "kubeconfig": str(kubeconfig)}
        found = find_champion("gs://b/repository", NAME, "gke", settings)
    assert found is None and fake.calls() == [("GET", DEPLOYMENT)]
    assert "no serving Deployment of tiny in namespace serving: no champion yet" in caplog.text


def test_no_endpoint_or_no_deployed_model_means_no_champion(caplog):
    with vertex_standin() as (fake, url), caplog.at_level(logging.INFO):
        settings = {**VERTEX, "vertex_api_endpoint": url}
        assert find_champion("gs://b/repository", NAME, "vertex", settings) is None
        fake.endpoints[f"{PARENT}/endpoints/1"] = {
            "name": f"{PARENT}/endpoints/1",
            "displayName": f"{NAME}-endpoint",
            "deployedModels": [],
        }
        assert find_champion("gs://b/repository", NAME, "vertex", settings) is None
    assert "no model serves on the Vertex AI endpoint 'tiny-endpoint'" in caplog.text
    assert fake.calls() == [("GET", "/endpoints")] * 2


def test_an_unreadable_target_stops_train_with_the_reason():
    with vertex_standin() as (fake, url):
        fake.refuse = "/endpoints"
        with pytest.raises(ChampionError, match="cannot read the champion from vertex: listing"):
            find_champion("gs://b/r", NAME, "vertex", {**VERTEX, "vertex_api_endpoint": url})


def test_a_served_folder_without_its_record_stops_train(gcs_emulator, tmp_path):  # noqa: F811
    bucket = _bucket()
    bucket.blob(f"repository/{NAME}/7/saved_model.pb").upload_from_string(b"not a record")
    uri = f"gs://{bucket.name}/repository/{NAME}/7"
    with running(tmp_path) as (fake, kubeconfig):
        fake.objects[DEPLOYMENT] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": NAME,
                "namespace": "serving",
                "generation": 1,
                "annotations": {HISTORY: json.dumps([{"version": "7", "uri": uri}])},
            },
            "spec": {"selector": {"matchLabels": {"app": NAME}}, "template": {}},
        }
        with pytest.raises(ChampionError, match=rf"no deployment.json in {uri}"):
            find_champion(f"gs://{bucket.name}/repository", NAME, "gke",
                          {"kubeconfig": str(kubeconfig)})  # fmt: skip


def test_an_unreachable_api_stops_train_with_the_reason(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running(tmp_path) as (_, kubeconfig):
        config = json.loads(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
    kubeconfig.write_text(json.dumps(config))
    with pytest.raises(ChampionError, match="cannot read the champion from gke: .*refused"):
        find_champion("gs://b/r", NAME, "gke", {"kubeconfig": str(kubeconfig)})
    settings = {**VERTEX, "vertex_api_endpoint": f"http://127.0.0.1:{port}"}
    with pytest.raises(ChampionError, match="cannot read the champion from vertex: .*refused"):
        find_champion("gs://b/r", NAME, "vertex", settings)


@pytest.mark.parametrize(
    ("target", "settings", "message"),
    [
        ("vertex", {"vertex_region": "europe-west1"}, "vertex_project is required"),
        ("gke", {"serving_namespace": "Not_A_Name"}, "serving_namespace must be a Kubernetes"),
        ("gke", {"colour": "blue"}, "unknown champion setting"),
    ],
)
def test_bad_target_settings_are_refused_before_anything_is_read(target, settings, message):
    with pytest.raises(ParameterError, match=message):
        find_champion("gs://b/r", NAME, target, settings)
    with pytest.raises(ParameterError, match="model_repository must be gs://"):
        find_champion("models/repository", NAME, "gke")


def test_the_cli_refuses_a_vertex_champion_without_a_project(synthetic_data, tmp_path, capsys):
    features, stats = synthetic_data
    argv = [str(features), "--stats", str(stats), "--output-dir", str(tmp_path / "out"),
            "--model-repository", "gs://b/r", "--deploy-target", "vertex",
            "--vertex-region", "europe-west1"]  # fmt: skip
    assert train_cli.main(argv) == 2
    assert "vertex_project is required for deploy target 'vertex'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
