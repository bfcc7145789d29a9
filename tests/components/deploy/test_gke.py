"""deploy_target=gke: the manifests against the Kubernetes schemas, and what the real
``kubernetes`` client (configured from a kubeconfig) sends to a loopback stand-in of the
Kubernetes API: create, update, rollback, the rollout wait and the teardown."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import infra.serving
from components.common.results import ParameterError
from components.deploy.gke import (
    FIELD_MANAGER,
    HISTORY,
    VERSION_LABEL,
    GkeError,
    GkeTarget,
    api_client,
    deploy_gke,
    manifests,
    object_name,
    rollback_gke,
    teardown_gke,
)
from components.deploy.vertex import CONTAINER_PORT

from .kube_standin import available, disruptions_allowed, pod, progressing, running, stale, stuck

IMAGE = "europe-west1-docker.pkg.dev/proj/repo/deploy@sha256:" + "cd" * 32
NAME = "btc-forecast"
URI = "gs://models/repository/btc-forecast/{}"
DEPLOYMENT = "/apis/apps/v1/namespaces/serving/deployments/btc-forecast"
PDB = "/apis/policy/v1/namespaces/serving/poddisruptionbudgets/btc-forecast"
PATHS = [
    DEPLOYMENT,
    "/api/v1/namespaces/serving/services/btc-forecast",
    "/apis/autoscaling/v2/namespaces/serving/horizontalpodautoscalers/btc-forecast",
    PDB,
]
#: Kubernetes minors the manifests are checked against: GKE's release channels carry
#: about three at a time, and the cluster follows its channel (infra/cluster.py).
KUBERNETES_VERSIONS = ("1.32.0", "1.33.0", "1.34.0", "1.35.0")
MODELS = {
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
    "PodDisruptionBudget": "V1PodDisruptionBudget",
}


def _target(**changes) -> GkeTarget:
    values = {"image": IMAGE, "min_replicas": 1, "max_replicas": 4, "poll_s": 0.01}
    return GkeTarget(**(values | changes))


def _manifests() -> list[dict]:
    return manifests(_target(), NAME, "3", URI.format(3), [{"version": "3", "uri": URI.format(3)}])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_pass_the_kubernetes_schemas(version):
    for manifest in _manifests():
        kubernetes_validate.validate(manifest, version, strict=True)


def test_manifests_round_trip_through_the_clients_openapi_models():
    """Deserialised into the client's models and serialised back unchanged: no field the
    models do not know (a typo would be dropped), none of a wrong type."""
    api = client.ApiClient()

    class Response:
        def __init__(self, data):
            self.data = json.dumps(data)

    for manifest in _manifests():
        model = api.deserialize(Response(manifest), MODELS[manifest["kind"]])
        assert api.sanitize_for_serialization(model) == manifest, manifest["kind"]


def test_first_deploy_applies_the_four_objects_and_waits_for_the_rollout(tmp_path):
    with running(tmp_path) as (fake, kubeconfig):
        result = deploy_gke(
            _target(),
            model_name=NAME,
            version="1",
            uri=URI.format(1),
            api=api_client(str(kubeconfig)),
        )
    assert fake.calls() == [
        ("GET", DEPLOYMENT),  # the history (404: none yet)
        *(("PATCH", path) for path in PATHS),
        # the rollout, from the Deployment itself: the Role grants no deployments/status
        ("GET", DEPLOYMENT),  # stale
        ("GET", DEPLOYMENT),  # progressing
        ("GET", DEPLOYMENT),  # available
    ]
    assert fake.refused == []
    assert all(r["authorization"] == "Bearer standin-token" for r in fake.requests)
    patches = [r for r in fake.requests if r["method"] == "PATCH"]
    for r in patches:
        assert r["content_type"] == "application/apply-patch+yaml"
        assert r["query"] == {"fieldManager": [FIELD_MANAGER], "force": ["true"]}
    deployment, service, hpa, pdb = (r["body"] for r in patches)

    assert deployment["metadata"]["namespace"] == "serving"
    assert deployment["metadata"]["labels"][VERSION_LABEL] == "1"
    assert json.loads(deployment["metadata"]["annotations"][HISTORY]) == [
        {
            "version": "1",
            "uri": URI.format(1),
            "image": IMAGE,
            "service_account": "model-server",
            "min_replicas": 1,
            "max_replicas": 4,
        }
    ]
    spec = deployment["spec"]
    assert "replicas" not in spec  # the HPA owns it
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": NAME}}
    template = spec["template"]
    assert template["metadata"]["labels"][VERSION_LABEL] == "1"
    assert template["spec"]["serviceAccountName"] == "model-server"
    (container,) = template["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python", "-m", "components.deploy", "serve"]
    assert container["args"] == [
        "--model-repository",
        URI.format(1),
        "--model-name",
        NAME,
        "--host",
        "0.0.0.0",
        "--port",
        str(CONTAINER_PORT),
    ]
    assert container["ports"] == [
        {"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}
    ]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/v2/health/ready",
        "port": "http",
        "scheme": "HTTP",
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    assert container["securityContext"]["runAsNonRoot"] is True

    assert service["metadata"]["namespace"] == "serving"
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": NAME}
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": NAME,
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": NAME}}
    assert result["rollout"] == {
        "observed": True,
        "replicas": 1,
        "updated": 1,
        "available": 1,
        "wanted": 1,
    }
    assert result["previous_version"] is None and result["history"] == ["1"]


def test_update_then_rollback_reapply_with_the_history(tmp_path):
    with running(tmp_path) as (fake, kubeconfig):
        api = api_client(str(kubeconfig))
        deploy_gke(_target(), model_name=NAME, version="1", uri=URI.format(1), api=api)
        second = deploy_gke(_target(), model_name=NAME, version="2", uri=URI.format(2), api=api)
        assert second["previous_version"] == "1" and second["history"] == ["1", "2"]
        stored = fake.objects[DEPLOYMENT]
        assert stored["metadata"]["generation"] == 2  # a new spec: a rolling update
        assert stored["spec"]["template"]["spec"]["containers"][0]["args"][1] == URI.format(2)

        other_image = IMAGE.replace("cd" * 32, "ef" * 32)
        third_target = _target(image=other_image, max_replicas=6)
        deploy_gke(third_target, model_name=NAME, version="3", uri=URI.format(3), api=api)
        start = len(fake.requests)
        # back to 2 as it was deployed: its image and replicas, not the third's
        back = rollback_gke(namespace="serving", model_name=NAME, api=api)
        assert back["version"] == "2" and back["previous_version"] == "3"
        assert back["history"] == ["1", "2"]
        assert (
            fake.calls()[start : start + 5]
            == [
                ("GET", DEPLOYMENT),
                *(("PATCH", path) for path in PATHS),
            ][:5]
        )
        body = fake.requests[start + 1]["body"]
        container = body["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][1] == URI.format(2) and container["image"] == IMAGE
        assert body["spec"]["template"]["metadata"]["labels"][VERSION_LABEL] == "2"
        assert fake.requests[start + 3]["body"]["spec"]["maxReplicas"] == 4
        assert fake.objects[DEPLOYMENT]["metadata"]["generation"] == 4

        rollback_gke(namespace="serving", model_name=NAME, api=api)
        with pytest.raises(GkeError, match=r"no previous version .*\(deployed: 1\)"):
            rollback_gke(namespace="serving", model_name=NAME, api=api)


def test_a_stalled_rollout_fails_with_the_pods_reason(tmp_path):
    with running(tmp_path) as (fake, kubeconfig):
        fake.rollout = [progressing, stuck]
        labels = {"app.kubernetes.io/name": NAME, VERSION_LABEL: "1"}
        fake.pods = [pod("btc-forecast-7d9-x1", labels, ("ImagePullBackOff", "no such manifest"))]
        with pytest.raises(GkeError) as failure:
            deploy_gke(
                _target(),
                model_name=NAME,
                version="1",
                uri=URI.format(1),
                api=api_client(str(kubeconfig)),
            )
        pods_query = fake.requests[-1]
    message = str(failure.value)
    assert "ProgressDeadlineExceeded" in message and "0/1 updated" not in message
    assert "btc-forecast-7d9-x1: ImagePullBackOff (no such manifest)" in message
    assert pods_query["path"] == "/api/v1/namespaces/serving/pods"
    assert ("", "pods", "list") in fake.allowed and fake.refused == []
    assert pods_query["query"]["labelSelector"] == [
        f"app.kubernetes.io/name={NAME},{VERSION_LABEL}=1"
    ]


def test_a_rollout_that_never_becomes_available_times_out(tmp_path):
    with running(tmp_path) as (fake, kubeconfig):
        fake.rollout = [stale, progressing]
        labels = {"app.kubernetes.io/name": NAME, VERSION_LABEL: "1"}
        fake.pods = [pod("btc-forecast-7d9-x2", labels, ("CrashLoopBackOff", "back-off 40s"))]
        with pytest.raises(
            GkeError, match=r"\(0.2 s\): 1/1 updated, 1 available.*CrashLoopBackOff"
        ):
            deploy_gke(
                _target(rollout_timeout_s=0.2),
                model_name=NAME,
                version="1",
                uri=URI.format(1),
                api=api_client(str(kubeconfig)),
            )
        reads = [c for c in fake.calls() if c == ("GET", DEPLOYMENT)]
    assert len(reads) >= 3  # it polled until the deadline


def test_teardown_deletes_only_our_objects(tmp_path):
    with running(tmp_path) as (fake, kubeconfig):
        api = api_client(str(kubeconfig))
        deploy_gke(_target(), model_name=NAME, version="1", uri=URI.format(1), api=api)
        other = "/api/v1/namespaces/serving/services/someone-else"
        fake.objects[other] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "someone-else", "namespace": "serving", "labels": {}},
            "spec": {},
        }
        start = len(fake.requests)
        deleted = teardown_gke("serving", api=api)
        calls = fake.calls()[start:]
        lists = [r["query"]["labelSelector"] for r in fake.requests[start:] if r["method"] == "GET"]
    assert deleted == [
        f"HorizontalPodAutoscaler/{NAME}",
        f"PodDisruptionBudget/{NAME}",
        f"Service/{NAME}",
        f"Deployment/{NAME}",
    ]
    assert calls == [
        ("GET", "/apis/autoscaling/v2/namespaces/serving/horizontalpodautoscalers"),
        ("DELETE", PATHS[2]),
        ("GET", "/apis/policy/v1/namespaces/serving/poddisruptionbudgets"),
        ("DELETE", PATHS[3]),
        ("GET", "/api/v1/namespaces/serving/services"),
        ("DELETE", PATHS[1]),
        ("GET", "/apis/apps/v1/namespaces/serving/deployments"),
        ("DELETE", PATHS[0]),
    ]
    assert lists == [[f"app.kubernetes.io/managed-by={FIELD_MANAGER}"]] * 4
    assert list(fake.objects) == [other]


def test_a_missing_kubeconfig_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(GkeError, match="make kubeconfig"):
        api_client(str(tmp_path / "nope"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": "europe-west1-docker.pkg.dev/proj/repo/deploy:latest"}, "pinned by digest"),
        ({"min_replicas": 3, "max_replicas": 2}, "replicas"),
        ({"namespace": "Serving_NS"}, "namespace"),
        ({"service_account": ""}, "service account"),
        ({"rollout_timeout_s": 0}, "timeout"),
    ],
)
def test_unusable_targets_are_parameter_errors(changes, message):
    with pytest.raises(ParameterError, match=message):
        _target(**changes)


def test_object_names_are_dns_labels():
    assert object_name("BTC_forecast.v2") == "btc-forecast-v2"
    with pytest.raises(ParameterError, match="no valid Kubernetes name"):
        object_name("___")


#: (API group, resource, verb): what deploy, update, rollback and teardown ask the API
#: server for. Server-side apply is ``patch``, and ``create`` when the object is new.
NEEDED = {
    *(
        (group, plural, verb)
        for group, plural in (
            ("apps", "deployments"),
            ("", "services"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("policy", "poddisruptionbudgets"),
        )
        for verb in ("patch", "create", "list", "delete")
    ),
    ("apps", "deployments", "get"),  # the history, then the rollout
}


def _deploy_update_rollback_teardown(fake, api) -> None:
    for version in ("1", "2"):
        deploy_gke(_target(), model_name=NAME, version=version, uri=URI.format(version), api=api)
    fake.rollout = [available]  # a rollback polls every 5 s (GkeTarget's default)
    rollback_gke(namespace="serving", model_name=NAME, api=api)
    teardown_gke("serving", api=api)


def test_the_deploy_asks_only_for_what_the_serving_role_grants(tmp_path):
    with running(tmp_path) as (fake, kubeconfig):
        assert fake.rules == infra.serving.SERVING_RULES
        _deploy_update_rollback_teardown(fake, api_client(str(kubeconfig)))
    assert fake.refused == []
    assert fake.allowed == NEEDED


def _without(rules, group: str, resource: str, verb: str) -> tuple:
    """``rules`` less one permission (the rest of its rule kept)."""
    out = []
    for g, resources, verbs in rules:
        if g != group or resource not in resources:
            out.append((g, tuple(resources), tuple(verbs)))
            continue
        others = tuple(r for r in resources if r != resource)
        if others:
            out.append((g, others, tuple(verbs)))
        out.append((g, (resource,), tuple(v for v in verbs if v != verb)))
    return tuple(out)


@pytest.mark.parametrize("permission", sorted(NEEDED), ids="/".join)
def test_a_permission_missing_from_the_serving_role_fails_with_403(
    permission, tmp_path, monkeypatch
):
    """Each permission the deploy needs, taken out of infra.serving.SERVING_RULES: the
    stand-in refuses the call as the API server would, and the step fails naming it."""
    group, resource, verb = permission
    monkeypatch.setattr(
        infra.serving, "SERVING_RULES", _without(infra.serving.SERVING_RULES, *permission)
    )
    with running(tmp_path) as (fake, kubeconfig):
        with pytest.raises(GkeError) as failure:
            _deploy_update_rollback_teardown(fake, api_client(str(kubeconfig)))
    message = str(failure.value)
    assert "failed: 403 " in message and "SERVING_RULES" in message
    assert f'cannot {verb} resource "{resource}" in API group "{group}"' in message
    assert fake.refused == [permission]


def test_the_standin_derives_the_rbac_verb_like_the_api_server(tmp_path):
    """Every call refused by an empty Role, with the API server's Status, under the
    (group, resource[/subresource], verb) the API server would check."""
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME}}
    with running(tmp_path, rules=()) as (fake, kubeconfig):
        api = api_client(str(kubeconfig))
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        calls = [
            (lambda: apps.read_namespaced_deployment(NAME, "serving"), "deployments", "get"),
            (
                lambda: apps.read_namespaced_deployment_status(NAME, "serving"),
                "deployments/status",
                "get",
            ),
            (lambda: apps.list_namespaced_deployment("serving"), "deployments", "list"),
            (
                lambda: apps.list_namespaced_deployment("serving", watch=True),
                "deployments",
                "watch",
            ),
            (lambda: apps.create_namespaced_deployment("serving", body), "deployments", "create"),
            (
                lambda: apps.replace_namespaced_deployment(NAME, "serving", body),
                "deployments",
                "update",
            ),
            (
                lambda: apps.patch_namespaced_deployment(NAME, "serving", body),
                "deployments",
                "patch",
            ),
            (lambda: apps.delete_namespaced_deployment(NAME, "serving"), "deployments", "delete"),
            (
                lambda: apps.delete_collection_namespaced_deployment("serving"),
                "deployments",
                "deletecollection",
            ),
        ]
        for call, resource, verb in calls:
            with pytest.raises(ApiException) as refused:
                call()
            assert refused.value.status == 403, (resource, verb)
            status = json.loads(refused.value.body)
            assert (status["kind"], status["reason"], status["code"]) == (
                "Status",
                "Forbidden",
                403,
            )
            assert fake.refused[-1] == ("apps", resource, verb)
        with pytest.raises(ApiException) as refused:
            core.list_namespaced_pod("serving")
        assert refused.value.status == 403 and fake.refused[-1] == ("", "pods", "list")
    assert len(fake.refused) == len(calls) + 1 and fake.allowed == set()


def test_the_standin_grants_the_role_in_the_serving_namespace_only(tmp_path):
    with running(tmp_path) as (fake, kubeconfig):
        apps = client.AppsV1Api(api_client(str(kubeconfig)))
        assert apps.list_namespaced_deployment("serving").items == []
        # the status subresource is a permission of its own, which the Role does not grant
        with pytest.raises(ApiException) as refused:
            apps.read_namespaced_deployment_status(NAME, "serving")
        assert refused.value.status == 403
        assert (
            'cannot get resource "deployments/status"' in json.loads(refused.value.body)["message"]
        )
        with pytest.raises(ApiException) as refused:
            apps.list_namespaced_deployment("kubeflow")
        assert refused.value.status == 403
    assert fake.allowed == {("apps", "deployments", "list")}
    assert fake.refused == [("apps", "deployments/status", "get"), ("apps", "deployments", "list")]


@pytest.mark.parametrize("replicas", [1, 3])
def test_the_disruption_budget_lets_a_drain_evict_one_pod_at_a_time(replicas, tmp_path):
    """The PDB the deploy applies, as the stand-in stored it: at every replica count the
    HPA may choose, a node drain may evict one serving pod (never zero: that blocks node
    upgrades and scale-down for good), and never a second while one is down."""
    target = _target(min_replicas=replicas, max_replicas=replicas + 2)
    with running(tmp_path) as (fake, kubeconfig):
        deploy_gke(
            target, model_name=NAME, version="1", uri=URI.format(1), api=api_client(str(kubeconfig))
        )
        pdb = fake.objects[PDB]
    assert pdb["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": NAME}}
    for count in range(target.min_replicas, target.max_replicas + 1):
        assert disruptions_allowed(pdb, count) == 1, count
        if count >= 2:
            assert disruptions_allowed(pdb, count, healthy=count - 1) == 0, count
