"""``python -m components.deploy teardown`` (what ``make destroy`` runs before ``pulumi
destroy``) and ``rollback --target gke``: the requests the real clients send to the
loopback stand-ins of Vertex AI and of the Kubernetes API, in order."""

from __future__ import annotations

import json

from google.auth.credentials import AnonymousCredentials

from components.deploy.__main__ import main
from components.deploy.gke import GkeTarget, api_client, deploy_gke
from components.deploy.vertex import deploy_vertex

from .kube_standin import running
from .test_vertex import IMAGE, PARENT, _target, vertex  # noqa: F401 (the fixture)

NAME = "btc-forecast"
URI = "gs://models/repository/btc-forecast/{}"


def test_teardown_empties_the_endpoint_and_the_serving_namespace_in_order(
    vertex,  # noqa: F811
    tmp_path,
    capsys,
):
    fake_vertex, url = vertex
    for version in ("1", "2"):
        deploy_vertex(
            _target(endpoint_name="stack-endpoint"),
            artifact_uri=URI.format(version),
            model_name=NAME,
            version=version,
            api_endpoint=url,
            credentials=AnonymousCredentials(),
        )
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "project": "proj",
                "region": "europe-west1",
                "vertex_endpoint": "stack-endpoint",
                "serving_namespace": "serving",
                "models_bucket": "gs://models",
            }
        )
    )
    with running(tmp_path) as (kube, kubeconfig):
        target = GkeTarget(image=IMAGE, poll_s=0.01)
        api = api_client(str(kubeconfig))
        deploy_gke(target, model_name=NAME, version="1", uri=URI.format(1), api=api)
        v_start, k_start = len(fake_vertex.requests), len(kube.requests)
        code = main(
            [
                "teardown",
                "--stack-outputs",
                str(outputs),
                "--kubeconfig",
                str(kubeconfig),
                "--api-endpoint",
                url,
            ]
        )
        kube_calls = kube.calls()[k_start:]
        left = dict(kube.objects)
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    vertex_calls = [
        (m, p.replace(f"/v1/{PARENT}", "")) for m, p, _, _ in fake_vertex.requests[v_start:]
    ]
    (endpoint,) = fake_vertex.endpoints
    endpoint_id = endpoint.rsplit("/", 1)[1]
    (model,) = report["vertex"]["deleted_models"]
    assert vertex_calls == [
        ("GET", "/endpoints"),
        ("POST", f"/endpoints/{endpoint_id}:undeployModel"),
        ("POST", f"/endpoints/{endpoint_id}:undeployModel"),
        ("GET", "/models"),
        ("DELETE", f"/models/{model.rsplit('/', 1)[1]}"),
    ]
    assert [m for m, _ in kube_calls] == ["GET", "DELETE"] * 4
    assert report["gke"] == {
        "namespace": "serving",
        "deleted": [
            f"HorizontalPodAutoscaler/{NAME}",
            f"PodDisruptionBudget/{NAME}",
            f"Service/{NAME}",
            f"Deployment/{NAME}",
        ],
    }
    assert left == {} and fake_vertex.models == {}
    assert fake_vertex.endpoints[endpoint]["deployedModels"] == []  # the endpoint is Pulumi's


def test_teardown_without_its_settings_is_a_usage_error(capsys):
    assert main(["teardown", "--skip-gke"]) == 2
    assert "teardown needs --project, --region, --endpoint" in capsys.readouterr().err


def test_cli_rollback_target_gke(tmp_path, capsys):
    with running(tmp_path) as (kube, kubeconfig):
        api = api_client(str(kubeconfig))
        target = GkeTarget(image=IMAGE, poll_s=0.01)
        for version in ("1", "2"):
            deploy_gke(target, model_name=NAME, version=version, uri=URI.format(version), api=api)
        code = main(["rollback", "--target", "gke", "--kubeconfig", str(kubeconfig)])
        container = kube.objects[f"/apis/apps/v1/namespaces/serving/deployments/{NAME}"]["spec"][
            "template"
        ]["spec"]["containers"][0]
    assert code == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["version"] == "1" and moved["previous_version"] == "2"
    assert container["args"][1] == URI.format(1)
    assert main(["rollback", "--target", "gke", "--kubeconfig", str(tmp_path / "none")]) == 1
    assert "make kubeconfig" in capsys.readouterr().err
