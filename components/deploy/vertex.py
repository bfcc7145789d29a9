"""Deploy target ``vertex``: a Vertex AI Model Registry version and an endpoint.

``deploy_vertex`` uploads the published SavedModel folder (``artifact_uri``, a version
folder in the models bucket) as a new version of one registry model (found by display
name; the first upload creates it), served by the model server image pinned by digest
with the routes of ``components.deploy.server``. It finds or creates the endpoint by
display name, deploys the new version with 100% of the traffic while the version that
had the traffic stays deployed at 0% (the rollback), and undeploys every older one.
``rollback_vertex`` gives all traffic back to the other deployed version.

Everything goes through ``google-cloud-aiplatform``'s GAPIC clients (``aiplatform_v1``);
``api_endpoint`` and ``credentials`` exist so tests can point the real clients at a
loopback stand-in of the service.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.common.results import ParameterError
from components.images import is_pinned

#: Port the container listens on (Vertex AI passes it as AIP_HTTP_PORT).
CONTAINER_PORT = 8080
_OPERATION_TIMEOUT_S = 3600


class VertexError(RuntimeError):
    """A Vertex AI call failed or the endpoint is not in a state we can act on."""


@dataclass(frozen=True)
class VertexTarget:
    """Where and how a model is deployed on Vertex AI."""

    project: str
    region: str
    image: str
    endpoint_name: str
    model_display_name: str
    machine_type: str = "n1-standard-2"
    min_replicas: int = 1
    max_replicas: int = 2
    service_account: str | None = None

    def __post_init__(self) -> None:
        if not self.project or not self.region:
            raise ParameterError("the vertex target needs a project and a region")
        if not is_pinned(self.image):
            raise ParameterError(
                f"the serving image must be pinned by digest (<image>@sha256:<64 hex>), "
                f"got {self.image!r}: build it with `make images` and pass its digest"
            )
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ParameterError(
                f"replicas must satisfy 1 <= min ({self.min_replicas}) <= max ({self.max_replicas})"
            )

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


@dataclass(frozen=True)
class VertexDeployment:
    model: str
    model_version_id: str
    endpoint: str
    deployed_model_id: str
    previous_deployed_model_id: str | None
    undeployed: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "model_version_id": self.model_version_id,
            "endpoint": self.endpoint,
            "deployed_model_id": self.deployed_model_id,
            "previous_deployed_model_id": self.previous_deployed_model_id,
            "undeployed": list(self.undeployed),
        }


def _clients(region: str, api_endpoint: str | None, credentials):
    from google.api_core.client_options import ClientOptions
    from google.cloud import aiplatform_v1

    if credentials is None and api_endpoint and api_endpoint.startswith("http://"):
        # A plain-HTTP endpoint is a loopback stand-in: never send it a real token.
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    options = ClientOptions(api_endpoint=api_endpoint or f"{region}-aiplatform.googleapis.com")
    kwargs = {"client_options": options, "credentials": credentials}
    if api_endpoint:
        kwargs["transport"] = "rest"
    return (
        aiplatform_v1.ModelServiceClient(**kwargs),
        aiplatform_v1.EndpointServiceClient(**kwargs),
    )


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _call(what: str, fn, *args, **kwargs):
    from google.api_core import exceptions

    try:
        return fn(*args, **kwargs)
    except exceptions.GoogleAPICallError as exc:
        raise VertexError(f"{what} failed: {exc}") from exc


def find_endpoint(endpoints, parent: str, endpoint_name: str):
    """The endpoint of ``parent`` whose display name is ``endpoint_name``, or None."""
    found = list(
        _call(
            "listing endpoints",
            endpoints.list_endpoints,
            request={"parent": parent, "filter": f"display_name={_quoted(endpoint_name)}"},
        )
    )
    if len(found) > 1:
        raise VertexError(
            f"{len(found)} endpoints are named {endpoint_name!r} in {parent}; delete the extra ones"
        )
    return found[0] if found else None


def find_or_create_endpoint(endpoints, target: VertexTarget):
    """The endpoint whose display name is ``target.endpoint_name`` (created if none)."""
    from google.cloud import aiplatform_v1

    found = find_endpoint(endpoints, target.parent, target.endpoint_name)
    if found is not None:
        return found
    operation = _call(
        "creating the endpoint",
        endpoints.create_endpoint,
        parent=target.parent,
        endpoint=aiplatform_v1.Endpoint(display_name=target.endpoint_name),
    )
    return operation.result(timeout=_OPERATION_TIMEOUT_S)


def _leader(endpoint) -> str | None:
    """The deployed model with the most traffic."""
    split = dict(endpoint.traffic_split)
    if not split:
        return None
    return max(split, key=lambda k: (split[k], k))


def served_model(
    *,
    project: str,
    region: str,
    endpoint_name: str,
    api_endpoint: str | None = None,
    credentials=None,
) -> dict | None:
    """The deployed model with the most traffic on the endpoint named ``endpoint_name``
    and its Model Registry version (``model``, ``artifact_uri``: the published version
    folder), or None when there is no such endpoint or nothing serves on it. Read-only:
    lists endpoints, gets one model version."""
    if not project or not region:
        raise ParameterError("the vertex target needs a project and a region")
    models, endpoints = _clients(region, api_endpoint, credentials)
    parent = f"projects/{project}/locations/{region}"
    endpoint = find_endpoint(endpoints, parent, endpoint_name)
    if endpoint is None:
        return None
    leader = _leader(endpoint)
    deployed = next((m for m in endpoint.deployed_models if m.id == leader), None)
    if deployed is None or not dict(endpoint.traffic_split).get(leader):
        return None
    name = deployed.model
    if "@" not in name and deployed.model_version_id:
        name = f"{name}@{deployed.model_version_id}"
    model = _call(f"reading {name}", models.get_model, name=name)
    return {
        "endpoint": endpoint.name,
        "deployed_model_id": deployed.id,
        "traffic": int(dict(endpoint.traffic_split)[leader]),
        "model": name,
        "artifact_uri": model.artifact_uri,
        "labels": dict(model.labels),
    }


def deploy_vertex(
    target: VertexTarget,
    *,
    artifact_uri: str,
    model_name: str,
    version: str,
    api_endpoint: str | None = None,
    credentials=None,
) -> VertexDeployment:
    """Upload ``artifact_uri`` as a new registry version and give it all the traffic."""
    from google.cloud import aiplatform_v1

    models, endpoints = _clients(target.region, api_endpoint, credentials)
    existing = list(
        _call(
            "listing models",
            models.list_models,
            request={
                "parent": target.parent,
                "filter": f"display_name={_quoted(target.model_display_name)}",
            },
        )
    )
    container = aiplatform_v1.ModelContainerSpec(
        image_uri=target.image,
        command=["python", "-m", "components.deploy", "serve"],
        args=["--model-name", model_name],
        ports=[aiplatform_v1.Port(container_port=CONTAINER_PORT)],
        predict_route=f"/v1/models/{model_name}:predict",
        health_route="/v2/health/ready",
    )
    model = aiplatform_v1.Model(
        display_name=target.model_display_name,
        artifact_uri=artifact_uri,
        container_spec=container,
        version_aliases=[f"v{version}"],
        labels={"model-version": str(version)},
    )
    request = aiplatform_v1.UploadModelRequest(
        parent=target.parent,
        model=model,
        parent_model=existing[0].name if existing else "",
    )
    uploaded = _call("uploading the model", models.upload_model, request=request).result(
        timeout=_OPERATION_TIMEOUT_S
    )
    endpoint = find_or_create_endpoint(endpoints, target)
    previous = _leader(endpoint)
    traffic = {"0": 100}
    if previous:
        traffic[previous] = 0
    deployed = aiplatform_v1.DeployedModel(
        model=f"{uploaded.model}@{uploaded.model_version_id}",
        display_name=f"{target.model_display_name}-v{version}",
        dedicated_resources=aiplatform_v1.DedicatedResources(
            machine_spec=aiplatform_v1.MachineSpec(machine_type=target.machine_type),
            min_replica_count=target.min_replicas,
            max_replica_count=target.max_replicas,
        ),
        service_account=target.service_account or "",
    )
    result = _call(
        "deploying the model",
        endpoints.deploy_model,
        endpoint=endpoint.name,
        deployed_model=deployed,
        traffic_split=traffic,
    ).result(timeout=_OPERATION_TIMEOUT_S)
    new_id = result.deployed_model.id
    keep = {new_id, previous}
    undeployed = []
    for old in endpoint.deployed_models:
        if old.id not in keep:
            _call(
                f"undeploying {old.id}",
                endpoints.undeploy_model,
                endpoint=endpoint.name,
                deployed_model_id=old.id,
            ).result(timeout=_OPERATION_TIMEOUT_S)
            undeployed.append(old.id)
    return VertexDeployment(
        model=uploaded.model,
        model_version_id=uploaded.model_version_id,
        endpoint=endpoint.name,
        deployed_model_id=new_id,
        previous_deployed_model_id=previous,
        undeployed=tuple(undeployed),
    )


def rollback_vertex(
    target: VertexTarget, *, api_endpoint: str | None = None, credentials=None
) -> dict:
    """Give 100% of the traffic to the deployed model that has none (the previous one)."""
    from google.cloud import aiplatform_v1
    from google.protobuf import field_mask_pb2

    _, endpoints = _clients(target.region, api_endpoint, credentials)
    endpoint = find_or_create_endpoint(endpoints, target)
    current = _leader(endpoint)
    others = [m for m in endpoint.deployed_models if m.id != current]
    if current is None or not others:
        raise VertexError(
            f"endpoint {endpoint.name} has no previous deployed model to roll back to "
            f"(deployed: {', '.join(m.id for m in endpoint.deployed_models) or 'none'})"
        )
    back = max(others, key=lambda m: m.create_time.timestamp() if m.create_time else 0).id
    updated = _call(
        "moving the traffic",
        endpoints.update_endpoint,
        endpoint=aiplatform_v1.Endpoint(name=endpoint.name, traffic_split={back: 100, current: 0}),
        update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]),
    )
    return {
        "endpoint": updated.name,
        "traffic_split": dict(updated.traffic_split),
        "from": current,
        "to": back,
    }


def default_endpoint_name(model_name: str) -> str:
    """The endpoint display name when none is given."""
    return f"{model_name}-endpoint"


def teardown_vertex(
    *,
    project: str,
    region: str,
    endpoint_name: str,
    model_display_name: str,
    api_endpoint: str | None = None,
    credentials=None,
) -> dict:
    """Undeploy every deployed model from the endpoints named ``endpoint_name`` (the
    endpoint itself is the stack's), then delete the registry models named
    ``model_display_name`` (DeleteModel removes a model with all its versions).

    The models without traffic go first and the one serving last: Vertex AI refuses to
    undeploy a model that has traffic unless it is the endpoint's last one."""
    parent = f"projects/{project}/locations/{region}"
    models, endpoints = _clients(region, api_endpoint, credentials)
    undeployed, deleted = [], []
    found = _call(
        "listing endpoints",
        endpoints.list_endpoints,
        request={"parent": parent, "filter": f"display_name={_quoted(endpoint_name)}"},
    )
    for endpoint in found:
        split = dict(endpoint.traffic_split)
        order = sorted(endpoint.deployed_models, key=lambda m: (split.get(m.id, 0), m.id))
        for deployed in order:
            _call(
                f"undeploying {deployed.id} from {endpoint.name}",
                endpoints.undeploy_model,
                endpoint=endpoint.name,
                deployed_model_id=deployed.id,
            ).result(timeout=_OPERATION_TIMEOUT_S)
            undeployed.append(f"{endpoint.name}/{deployed.id}")
    found = _call(
        "listing models",
        models.list_models,
        request={"parent": parent, "filter": f"display_name={_quoted(model_display_name)}"},
    )
    for model in found:
        _call(f"deleting {model.name}", models.delete_model, name=model.name).result(
            timeout=_OPERATION_TIMEOUT_S
        )
        deleted.append(model.name)
    return {"undeployed": undeployed, "deleted_models": deleted}
