"""deploy_target=vertex: the requests the real google-cloud-aiplatform clients send (REST
transport) received by a loopback stand-in of Vertex AI that keeps the state of models and
endpoints. No call reaches Google."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from google.auth.credentials import AnonymousCredentials

from components.common.results import ParameterError
from components.deploy.vertex import (
    CONTAINER_PORT,
    VertexError,
    VertexTarget,
    deploy_vertex,
    rollback_vertex,
    served_model,
    teardown_vertex,
)
from tests.loopback import json_server

PARENT = "projects/proj/locations/europe-west1"
IMAGE = "europe-west1-docker.pkg.dev/proj/repo/deploy@sha256:" + "ab" * 32
TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."


class FakeVertex:
    """The slice of the Vertex AI REST API the deploy target uses, with state."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.models: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self._ids = iter(range(1000, 10_000))
        self.versions: dict[tuple[str, str], dict] = {}  # (model, version id) -> uploaded
        self.refuse: str | None = None  # a path suffix answered 403

    def handle(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        if self.refuse and path.endswith(self.refuse):
            self.requests.append((method, path, query, body))
            return 403, {
                "error": {
                    "code": 403,
                    "message": "Permission denied",
                    "status": "PERMISSION_DENIED",
                }
            }
        return self._handle(method, path, query, body)

    def _handle(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        self.requests.append((method, path, query, body))
        if method == "GET" and path == f"/v1/{PARENT}/models":
            name = _display_name(query)
            return 200, {"models": [m for m in self.models.values() if m["displayName"] == name]}
        if method == "POST" and path == f"/v1/{PARENT}/models:upload":
            parent_model = body.get("parentModel")
            if parent_model:
                model = self.models[parent_model]
                model["versionId"] = str(int(model["versionId"]) + 1)
            else:
                name = f"{PARENT}/models/{next(self._ids)}"
                model = {"name": name, "displayName": body["model"]["displayName"]}
                model["versionId"] = "1"
                self.models[name] = model
            self.versions[model["name"], model["versionId"]] = body["model"]
            response = {"model": model["name"], "modelVersionId": model["versionId"]}
            return 200, _done("UploadModelResponse", response)
        if method == "GET" and path.startswith(f"/v1/{PARENT}/models/"):
            name, _, version = urllib.parse.unquote(path[len("/v1/") :]).partition("@")
            model = self.models.get(name)
            uploaded = model and self.versions.get((name, version or model["versionId"]))
            if not uploaded:
                return 404, {"error": {"code": 404, "message": f"{name}@{version} not found"}}
            return 200, {**uploaded, "name": name, "versionId": version or model["versionId"]}
        if method == "GET" and path == f"/v1/{PARENT}/endpoints":
            name = _display_name(query)
            return 200, {
                "endpoints": [e for e in self.endpoints.values() if e["displayName"] == name]
            }
        if method == "POST" and path == f"/v1/{PARENT}/endpoints":
            name = f"{PARENT}/endpoints/{next(self._ids)}"
            endpoint = {"name": name, "displayName": body["displayName"], "deployedModels": []}
            self.endpoints[name] = endpoint
            return 200, _done("Endpoint", endpoint)
        if method == "DELETE" and path.startswith(f"/v1/{PARENT}/models/"):
            name = path[len("/v1/") :]
            if name not in self.models:
                return 404, {"error": {"code": 404, "message": f"{name} not found"}}
            for endpoint in self.endpoints.values():
                if any(m["model"].startswith(name + "@") for m in endpoint["deployedModels"]):
                    return 400, {"error": {"code": 400, "message": f"{name} is deployed"}}
            del self.models[name]
            return 200, {
                "name": f"{PARENT}/operations/2",
                "done": True,
                "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
            }
        match = re.fullmatch(r"/v1/(.+/endpoints/\d+)(:\w+)?", path)
        if match and match[1] in self.endpoints:
            endpoint = self.endpoints[match[1]]
            if method == "POST" and match[2] == ":deployModel":
                new_id = str(next(self._ids))
                deployed = {**body["deployedModel"], "id": new_id}
                deployed["createTime"] = f"2026-01-01T00:{len(self.requests):02d}:00Z"
                endpoint["deployedModels"].append(deployed)
                split = {(new_id if k == "0" else k): v for k, v in body["trafficSplit"].items()}
                endpoint["trafficSplit"] = split
                return 200, _done("DeployModelResponse", {"deployedModel": deployed})
            if method == "POST" and match[2] == ":undeployModel":
                gone = body["deployedModelId"]
                last = [m["id"] for m in endpoint["deployedModels"]] == [gone]
                if endpoint.get("trafficSplit", {}).get(gone, 0) > 0 and not last:
                    return 400, {"error": {"code": 400, "message": f"{gone} has traffic"}}
                endpoint["deployedModels"] = [
                    m for m in endpoint["deployedModels"] if m["id"] != gone
                ]
                endpoint.get("trafficSplit", {}).pop(gone, None)
                return 200, _done("UndeployModelResponse", {})
            if method == "PATCH" and match[2] is None:
                assert query.get("updateMask") == ["trafficSplit"], query
                endpoint["trafficSplit"] = dict(body["trafficSplit"])
                return 200, endpoint
        return 404, {"error": {"code": 404, "message": f"no route {method} {path}"}}

    def calls(self) -> list[tuple[str, str]]:
        return [(m, p.replace(f"/v1/{PARENT}", "")) for m, p, _, _ in self.requests]


def _display_name(query: dict) -> str:
    (text,) = query["filter"]
    match = re.fullmatch(r'display_name="(.*)"', text)
    assert match, text
    return match[1]


def _done(type_name: str, response: dict) -> dict:
    return {
        "name": f"{PARENT}/operations/1",
        "done": True,
        "response": {"@type": TYPE + type_name, **response},
    }


@pytest.fixture
def vertex() -> Iterator[tuple[FakeVertex, str]]:
    with vertex_standin() as running:
        yield running


@contextmanager
def vertex_standin() -> Iterator[tuple[FakeVertex, str]]:
    """The stand-in on a loopback port, and its URL (the clients' ``api_endpoint``)."""
    fake = FakeVertex()

    def handle(method, path, query, headers, raw):
        return fake.handle(method, path, query, json.loads(raw or b"{}"))

    with json_server(handle) as url:
        yield fake, url


def _target(**changes) -> VertexTarget:
    values = {
        "project": "proj",
        "region": "europe-west1",
        "image": IMAGE,
        "endpoint_name": "btc-forecast-endpoint",
        "model_display_name": "btc-forecast",
        "machine_type": "n1-standard-4",
        "min_replicas": 1,
        "max_replicas": 3,
        "service_account": "serving@proj.iam.gserviceaccount.com",
    }
    return VertexTarget(**(values | changes))


def _deploy(url: str, version: str):
    return deploy_vertex(
        _target(),
        artifact_uri=f"gs://models/repository/btc-forecast/{version}",
        model_name="btc-forecast",
        version=version,
        api_endpoint=url,
        credentials=AnonymousCredentials(),
    )


def test_first_deploy_creates_model_and_endpoint_with_all_traffic(vertex):
    fake, url = vertex
    result = _deploy(url, "1")
    assert fake.calls() == [
        ("GET", "/models"),
        ("POST", "/models:upload"),
        ("GET", "/endpoints"),
        ("POST", "/endpoints"),
        ("POST", f"/endpoints/{result.endpoint.rsplit('/', 1)[1]}:deployModel"),
    ]
    upload = fake.requests[1][3]
    assert "parentModel" not in upload  # the first upload creates the registry model
    model = upload["model"]
    assert model["displayName"] == "btc-forecast"
    assert model["artifactUri"] == "gs://models/repository/btc-forecast/1"
    assert model["versionAliases"] == ["v1"]
    spec = model["containerSpec"]
    assert spec["imageUri"] == IMAGE
    assert spec["command"] == ["python", "-m", "components.deploy", "serve"]
    assert spec["args"] == ["--model-name", "btc-forecast"]
    assert spec["ports"] == [{"containerPort": CONTAINER_PORT}]
    assert spec["predictRoute"] == "/v1/models/btc-forecast:predict"
    assert spec["healthRoute"] == "/v2/health/ready"
    assert fake.requests[2][2]["filter"] == ['display_name="btc-forecast-endpoint"']
    assert fake.requests[3][3] == {"displayName": "btc-forecast-endpoint"}
    deploy = fake.requests[4][3]
    assert deploy["trafficSplit"] == {"0": 100}
    deployed = deploy["deployedModel"]
    assert deployed["model"] == f"{result.model}@1"
    assert deployed["serviceAccount"] == "serving@proj.iam.gserviceaccount.com"
    assert deployed["dedicatedResources"] == {
        "machineSpec": {"machineType": "n1-standard-4"},
        "minReplicaCount": 1,
        "maxReplicaCount": 3,
    }
    assert result.previous_deployed_model_id is None and result.undeployed == ()


def test_later_deploys_are_versions_keep_the_previous_at_zero_and_undeploy_older(vertex):
    fake, url = vertex
    first = _deploy(url, "1")
    second = _deploy(url, "2")
    upload = [r for r in fake.requests if r[1].endswith("models:upload")][-1][3]
    assert upload["parentModel"] == first.model and upload["model"]["versionAliases"] == ["v2"]
    assert second.model == first.model and second.model_version_id == "2"
    assert second.endpoint == first.endpoint  # found by display name, not created again
    assert [m for m, p in fake.calls()].count("POST") == 5  # 2 uploads, 1 create, 2 deploys
    deploy = [r for r in fake.requests if r[1].endswith(":deployModel")][-1][3]
    assert deploy["trafficSplit"] == {"0": 100, first.deployed_model_id: 0}
    assert deploy["deployedModel"]["model"] == f"{first.model}@2"
    assert second.previous_deployed_model_id == first.deployed_model_id
    assert second.undeployed == ()

    third = _deploy(url, "3")
    assert third.previous_deployed_model_id == second.deployed_model_id
    assert third.undeployed == (first.deployed_model_id,)
    undeploy = [r for r in fake.requests if r[1].endswith(":undeployModel")]
    assert [r[3] for r in undeploy] == [{"deployedModelId": first.deployed_model_id}]
    endpoint = fake.endpoints[third.endpoint]
    assert endpoint["trafficSplit"] == {third.deployed_model_id: 100, second.deployed_model_id: 0}
    assert {m["id"] for m in endpoint["deployedModels"]} == {
        second.deployed_model_id,
        third.deployed_model_id,
    }


def test_rollback_moves_all_traffic_to_the_previous_version(vertex):
    fake, url = vertex
    first = _deploy(url, "1")
    second = _deploy(url, "2")
    moved = rollback_vertex(_target(), api_endpoint=url, credentials=AnonymousCredentials())
    assert moved["from"] == second.deployed_model_id and moved["to"] == first.deployed_model_id
    method, path, query, body = fake.requests[-1]
    assert (method, path) == ("PATCH", f"/v1/{second.endpoint}")
    assert query["updateMask"] == ["trafficSplit"]
    assert body["trafficSplit"] == {first.deployed_model_id: 100, second.deployed_model_id: 0}
    assert fake.endpoints[second.endpoint]["trafficSplit"][first.deployed_model_id] == 100


def test_served_model_is_the_one_with_the_traffic_and_its_registry_artifact(vertex):
    fake, url = vertex
    where = {"project": "proj", "region": "europe-west1", "credentials": AnonymousCredentials()}
    assert served_model(endpoint_name="btc-forecast-endpoint", api_endpoint=url, **where) is None
    assert fake.calls() == [("GET", "/endpoints")]  # looked up, never created
    first = _deploy(url, "1")
    second = _deploy(url, "2")
    served = served_model(endpoint_name="btc-forecast-endpoint", api_endpoint=url, **where)
    assert served["deployed_model_id"] == second.deployed_model_id and served["traffic"] == 100
    assert served["artifact_uri"] == "gs://models/repository/btc-forecast/2"
    assert served["model"] == f"{second.model}@2" and served["labels"] == {"model-version": "2"}
    # GetModel of that registry version ('@' percent-encoded by the client)
    assert fake.calls()[-1] == ("GET", f"/models/{second.model.rsplit('/', 1)[1]}%402")
    rollback_vertex(_target(), api_endpoint=url, credentials=AnonymousCredentials())
    back = served_model(endpoint_name="btc-forecast-endpoint", api_endpoint=url, **where)
    assert back["deployed_model_id"] == first.deployed_model_id
    assert back["artifact_uri"] == "gs://models/repository/btc-forecast/1"
    fake.endpoints[first.endpoint]["deployedModels"] = []
    fake.endpoints[first.endpoint]["trafficSplit"] = {}
    assert served_model(endpoint_name="btc-forecast-endpoint", api_endpoint=url, **where) is None


def test_rollback_without_a_previous_version_is_an_error(vertex):
    _, url = vertex
    _deploy(url, "1")
    with pytest.raises(VertexError, match="no previous deployed model"):
        rollback_vertex(_target(), api_endpoint=url, credentials=AnonymousCredentials())


def test_a_refused_call_names_the_step_and_deploys_nothing(vertex):
    fake, url = vertex
    first = _deploy(url, "1")
    fake.refuse = "models:upload"
    with pytest.raises(VertexError, match="uploading the model failed: 403"):
        _deploy(url, "2")
    assert not any(p.endswith(":deployModel") for _, p, _, _ in fake.requests[-2:])
    assert fake.endpoints[first.endpoint]["trafficSplit"] == {first.deployed_model_id: 100}
    fake.refuse = ":deployModel"
    with pytest.raises(VertexError, match="deploying the model failed"):
        _deploy(url, "2")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": "europe-west1-docker.pkg.dev/proj/repo/deploy:latest"}, "pinned by digest"),
        ({"min_replicas": 3, "max_replicas": 2}, "replicas"),
        ({"project": ""}, "project"),
    ],
)
def test_unusable_targets_are_parameter_errors(changes, message):
    with pytest.raises(ParameterError, match=message):
        _target(**changes)


def test_cli_publish_and_rollback_with_target_vertex(vertex, capsys):
    from components.deploy.__main__ import main

    fake, url = vertex
    common = [
        "--model-name",
        "btc-forecast",
        "--project",
        "proj",
        "--region",
        "europe-west1",
        "--api-endpoint",
        url,
    ]
    publish = ["publish", "gs://models/train-output", "--target", "vertex", "--image", IMAGE]
    assert main([*publish, "--version", "1", *common]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*publish, "--version", "2", "--max-replicas", "4", *common]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["previous_deployed_model_id"] == first["deployed_model_id"]
    upload = [r for r in fake.requests if r[1].endswith("models:upload")][-1][3]
    assert upload["model"]["artifactUri"] == "gs://models/train-output/2"
    deploy = [r for r in fake.requests if r[1].endswith(":deployModel")][-1][3]
    assert deploy["deployedModel"]["dedicatedResources"]["maxReplicaCount"] == 4
    assert fake.requests[2][2]["filter"] == ['display_name="btc-forecast-endpoint"']

    assert main(["rollback", "--target", "vertex", *common]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["to"] == first["deployed_model_id"]

    assert main([*publish, *common]) == 2  # no --version
    assert "--target vertex needs --version" in capsys.readouterr().err
    local_dir = ["publish", "local/model", "--target", "vertex", "--image", IMAGE, "--version", "3"]
    assert main([*local_dir, *common]) == 2
    assert "gs://" in capsys.readouterr().err


def test_teardown_undeploys_every_model_then_deletes_the_registry_model(vertex):
    fake, url = vertex
    first = _deploy(url, "1")
    second = _deploy(url, "2")
    endpoint = second.endpoint
    start = len(fake.requests)
    removed = teardown_vertex(
        project="proj",
        region="europe-west1",
        endpoint_name="btc-forecast-endpoint",
        model_display_name="btc-forecast",
        api_endpoint=url,
        credentials=AnonymousCredentials(),
    )
    endpoint_id = endpoint.rsplit("/", 1)[1]
    assert fake.calls()[start:] == [
        ("GET", "/endpoints"),
        ("POST", f"/endpoints/{endpoint_id}:undeployModel"),  # the one at 0% first
        ("POST", f"/endpoints/{endpoint_id}:undeployModel"),  # then the serving one
        ("GET", "/models"),
        ("DELETE", f"/models/{first.model.rsplit('/', 1)[1]}"),
    ]
    undeploys = [r[3]["deployedModelId"] for r in fake.requests[start:] if "undeploy" in r[1]]
    assert undeploys == [first.deployed_model_id, second.deployed_model_id]
    assert removed == {
        "undeployed": [
            f"{endpoint}/{first.deployed_model_id}",
            f"{endpoint}/{second.deployed_model_id}",
        ],
        "deleted_models": [first.model],
    }
    assert fake.models == {} and fake.endpoints[endpoint]["deployedModels"] == []
    # the endpoint stays: it is the stack's, and `pulumi destroy` deletes it
    assert endpoint in fake.endpoints
    # a second teardown finds nothing to do
    again = teardown_vertex(
        project="proj",
        region="europe-west1",
        endpoint_name="btc-forecast-endpoint",
        model_display_name="btc-forecast",
        api_endpoint=url,
        credentials=AnonymousCredentials(),
    )
    assert again == {"undeployed": [], "deleted_models": []}
