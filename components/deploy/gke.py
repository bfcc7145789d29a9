"""Deploy target ``gke``: the model server as a Deployment in the cluster's ``serving``
namespace, with a Service, a HorizontalPodAutoscaler and a PodDisruptionBudget.

Every pod serves one fixed version folder of the models bucket
(``gs://.../<model>/<version>/``, a SavedModelSource: immutable), so a new version is a
Kubernetes rolling update (``maxUnavailable: 0``: the old pods serve until the new ones
are ready) and a rollback is the same apply with the previous folder. The versions
deployed so far are kept, newest last, in the Deployment's annotation ``HISTORY``;
``rollback_gke`` re-applies the one before the newest and drops the newest.

The objects are applied with server-side apply (field manager ``FIELD_MANAGER``) through
the official ``kubernetes`` client; ``wait_for_rollout`` follows the Deployment's status
until every replica runs the new version, and names the pods' reasons when it does not.
The client is configured from a kubeconfig (a laptop: ``make kubeconfig``) or, inside a
pod (the pipeline's deploy step, as KSA ``kubeflow/pipeline-runner``), in-cluster.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass

from components.common.contracts import DEFAULT_SERVING_NAMESPACE
from components.common.results import ParameterError
from components.deploy.vertex import CONTAINER_PORT
from components.images import IMAGE_USER_UID, is_pinned

log = logging.getLogger(__name__)

#: The server-side apply field manager, and the label every object of ours carries.
FIELD_MANAGER = "crypto-forecast-deploy"
MANAGED_BY = {"app.kubernetes.io/managed-by": FIELD_MANAGER}
#: Deployment annotation: the deployed versions, newest (the one served) last.
HISTORY = "crypto-forecast/deployed-versions"
VERSION_LABEL = "crypto-forecast/model-version"
HISTORY_KEPT = 10
#: The server's container resources. Measured locally: the server with a loaded
#: SavedModel holds about 600 MB; TensorFlow's first load peaks higher.
RESOURCES = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
#: The HPA's target: average CPU utilisation of the requests, percent.
CPU_UTILIZATION_TARGET = 70
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
SERVICE_PORT = 80
#: A Kubernetes object name (RFC 1123 label).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: (kind, API path prefix, plural) of the objects we apply, in apply order.
KINDS = (
    ("Deployment", "/apis/apps/v1", "deployments"),
    ("Service", "/api/v1", "services"),
    ("HorizontalPodAutoscaler", "/apis/autoscaling/v2", "horizontalpodautoscalers"),
    ("PodDisruptionBudget", "/apis/policy/v1", "poddisruptionbudgets"),
)


class GkeError(RuntimeError):
    """A Kubernetes call failed or the rollout did not become available."""


def object_name(model_name: str) -> str:
    """The Kubernetes name of a model's serving objects (a DNS label)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:50].strip("-")
    if not DNS_LABEL.match(name):
        raise ParameterError(
            f"model name {model_name!r} gives no valid Kubernetes name: use letters or digits"
        )
    return name


@dataclass(frozen=True)
class GkeTarget:
    """Where and how the server runs in the cluster."""

    image: str
    namespace: str = DEFAULT_SERVING_NAMESPACE
    service_account: str = "model-server"
    min_replicas: int = 1
    max_replicas: int = 2
    rollout_timeout_s: float = 600.0
    poll_s: float = 5.0

    def __post_init__(self) -> None:
        if not is_pinned(self.image or ""):
            raise ParameterError(
                f"the serving image must be pinned by digest (<image>@sha256:<64 hex>), "
                f"got {self.image!r}: build it with `make images` and pass its digest"
            )
        for what, value in (
            ("namespace", self.namespace),
            ("service account", self.service_account),
        ):
            if not DNS_LABEL.match(value or ""):
                raise ParameterError(f"the serving {what} {value!r} is not a Kubernetes name")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ParameterError(
                f"replicas must satisfy 1 <= min ({self.min_replicas}) <= max ({self.max_replicas})"
            )
        if self.rollout_timeout_s <= 0:
            raise ParameterError(f"the rollout timeout must be > 0 s, got {self.rollout_timeout_s}")


def manifests(
    target: GkeTarget, model_name: str, version: str, uri: str, history: list[dict]
) -> list[dict]:
    """Deployment, Service, HPA and PDB serving ``uri`` (version ``version``);
    ``history`` (the Deployment's annotation) must end with that version."""
    name = object_name(model_name)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "model-server"}
    selector = {"app.kubernetes.io/name": name}
    meta = {
        "name": name,
        "namespace": target.namespace,
        "labels": {**labels, **MANAGED_BY},
    }
    probe = {"port": "http", "scheme": "HTTP"}
    container = {
        "name": "server",
        "image": target.image,
        "command": ["python", "-m", "components.deploy", "serve"],
        "args": [
            *("--model-repository", uri),
            *("--model-name", model_name),
            *("--host", "0.0.0.0"),
            *("--port", str(CONTAINER_PORT)),
        ],
        "env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"}],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": READY_PATH, **probe},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": LIVE_PATH, **probe},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        # The SavedModel is downloaded and loaded before the server answers at all.
        "startupProbe": {
            "httpGet": {"path": LIVE_PATH, **probe},
            "periodSeconds": 5,
            "failureThreshold": 36,
        },
        "resources": RESOURCES,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": IMAGE_USER_UID,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **meta,
            "labels": {**meta["labels"], VERSION_LABEL: version},
            "annotations": {HISTORY: json.dumps(history[-HISTORY_KEPT:])},
        },
        "spec": {
            # no replicas: the HPA owns the count
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "progressDeadlineSeconds": int(target.rollout_timeout_s),
            "template": {
                "metadata": {
                    "labels": {**labels, VERSION_LABEL: version},
                    "annotations": {"crypto-forecast/model-uri": uri},
                },
                "spec": {
                    "serviceAccountName": target.service_account,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": target.min_replicas,
            "maxReplicas": target.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": CPU_UTILIZATION_TARGET,
                        },
                    },
                }
            ],
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta,
        "spec": {
            # One voluntary eviction at a time, whatever the HPA's count: with several
            # replicas the others serve while one moves; with one replica the drain (node
            # upgrade, autoscaler scale-down) may still move it. ``minAvailable: 1`` would
            # allow no eviction at all with one replica and block every drain of its node.
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector},
            # a pod that is not ready protects nothing: never let it block a node drain
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
    return [deployment, service, hpa, pdb]


def api_client(kubeconfig: str | None = None):
    """A ``kubernetes`` ApiClient: from ``kubeconfig`` or ``$KUBECONFIG``; else in-cluster
    inside a pod; else ``~/.kube/config``."""
    from kubernetes import client, config

    configuration = client.Configuration()
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (config.ConfigException, OSError) as exc:
        raise GkeError(
            f"no Kubernetes configuration: {exc}. From a laptop run `make kubeconfig` and "
            "export KUBECONFIG; in a pod the service account's in-cluster token is used"
        ) from None
    return client.ApiClient(configuration)


def _path(manifest: dict) -> str:
    kind = manifest["kind"]
    prefix, plural = next((p, n) for k, p, n in KINDS if k == kind)
    meta = manifest["metadata"]
    return f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"


def _api_error(what: str, exc) -> GkeError:
    detail = exc.reason
    try:
        detail = json.loads(exc.body).get("message") or detail
    except (TypeError, ValueError, AttributeError):
        pass
    if exc.status == 403:
        detail += (
            " (the deploy step may do only what the Role serving-deployer in the serving "
            "namespace grants: infra/serving.py SERVING_RULES)"
        )
    return GkeError(f"{what} failed: {exc.status} {detail}")


def apply(api, manifest: dict) -> dict:
    """Server-side apply of one object (created if absent); the object as stored."""
    from kubernetes.client.exceptions import ApiException

    try:
        return api.call_api(
            _path(manifest),
            "PATCH",
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={
                "Content-Type": "application/apply-patch+yaml",
                "Accept": "application/json",
            },
            body=manifest,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
    except ApiException as exc:
        raise _api_error(f"applying {manifest['kind']} {_path(manifest)}", exc) from exc


def read_history(api, namespace: str, model_name: str) -> list[dict]:
    """The deployed versions recorded on the Deployment (empty if there is none)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        deployment = client.AppsV1Api(api).read_namespaced_deployment(
            object_name(model_name), namespace
        )
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise _api_error("reading the serving Deployment", exc) from exc
    text = (deployment.metadata.annotations or {}).get(HISTORY) or "[]"
    try:
        history = json.loads(text)
    except ValueError:
        raise GkeError(f"the Deployment's annotation {HISTORY} is not JSON: {text!r}") from None
    return [h for h in history if isinstance(h, dict) and "version" in h and "uri" in h]


def served_entry(
    namespace: str, model_name: str, *, kubeconfig: str | None = None, api=None
) -> dict | None:
    """The history entry (``version``, ``uri``, ...) of the version the serving Deployment
    rolls out now, the newest of its annotation ``HISTORY``; None when there is no
    Deployment (or it records no version). Read-only: one GET of the Deployment."""
    history = read_history(api or api_client(kubeconfig), namespace, model_name)
    return history[-1] if history else None


def _pod_reasons(core, namespace: str, selector: str) -> list[str]:
    reasons = []
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        found = []
        for status in pod.status.container_statuses or []:
            state = status.state
            if state and state.waiting and state.waiting.reason:
                found.append(f"{state.waiting.reason} ({state.waiting.message or ''})".strip())
            elif state and state.terminated and state.terminated.reason:
                found.append(f"terminated: {state.terminated.reason}")
            elif not status.ready:
                found.append("not ready (readiness probe failing)")
        for condition in pod.status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                found.append(f"{condition.reason}: {condition.message}")
        if found:
            reasons.append(f"{pod.metadata.name}: {'; '.join(found)}")
    return reasons


def wait_for_rollout(api, target: GkeTarget, model_name: str, version: str) -> dict:
    """Poll the Deployment until the new generation is observed and every replica is
    updated and available; GkeError with the pods' reasons on timeout or when the
    Deployment reports ProgressDeadlineExceeded."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    name = object_name(model_name)
    deadline = time.monotonic() + target.rollout_timeout_s
    last = None
    while True:
        try:
            # The Deployment itself (GET deployments/{name}) carries .status: the Role
            # ``serving-deployer`` (infra/serving.py SERVING_RULES) grants ``get`` on
            # ``deployments`` only, and read_namespaced_deployment_status would read the
            # subresource ``deployments/status``, a separate permission it does not need.
            deployment = apps.read_namespaced_deployment(name, target.namespace)
        except ApiException as exc:
            raise _api_error("reading the rollout status", exc) from exc
        status = deployment.status
        wanted = deployment.spec.replicas or 1
        seen = (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
        progress = {
            "observed": seen,
            "replicas": status.replicas or 0,
            "updated": status.updated_replicas or 0,
            "available": status.available_replicas or 0,
            "wanted": wanted,
        }
        if progress != last:
            log.info(
                "rollout of %s version %s: %d/%d updated, %d available, %d total%s",
                name,
                version,
                progress["updated"],
                wanted,
                progress["available"],
                progress["replicas"],
                "" if seen else " (new spec not yet observed)",
            )
            last = progress
        if (
            seen
            and progress["updated"] >= wanted
            and progress["available"] >= wanted
            and progress["replicas"] == progress["updated"]
            and not status.unavailable_replicas
        ):
            return progress
        stalled = [
            c
            for c in status.conditions or []
            if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
        ]
        if stalled or time.monotonic() >= deadline:
            selector = f"app.kubernetes.io/name={name},{VERSION_LABEL}={version}"
            try:
                reasons = _pod_reasons(core, target.namespace, selector)
            except ApiException as exc:
                reasons = [f"(pods not readable: {exc.status} {exc.reason})"]
            why = "ProgressDeadlineExceeded" if stalled else f"{target.rollout_timeout_s:g} s"
            raise GkeError(
                f"the rollout of {target.namespace}/{name} version {version} did not become "
                f"available ({why}): {progress['updated']}/{wanted} updated, "
                f"{progress['available']} available; pods: {', '.join(reasons) or 'none'}. "
                "The previous version's pods keep serving (maxUnavailable 0); "
                "`python -m components.deploy rollback --target gke` re-applies it."
            )
        time.sleep(target.poll_s)


def _apply_all(api, target, model_name, version, uri, history) -> dict:
    for manifest in manifests(target, model_name, version, uri, history):
        apply(api, manifest)
    progress = wait_for_rollout(api, target, model_name, version)
    return {
        "namespace": target.namespace,
        "deployment": object_name(model_name),
        "version": version,
        "uri": uri,
        "rollout": progress,
        "history": [h["version"] for h in history[-HISTORY_KEPT:]],
    }


def _entry(target: GkeTarget, version: str, uri: str) -> dict:
    """A history entry: what a rollback needs to re-apply this version as it was."""
    return {
        "version": str(version),
        "uri": uri,
        "image": target.image,
        "service_account": target.service_account,
        "min_replicas": target.min_replicas,
        "max_replicas": target.max_replicas,
    }


def deploy_gke(target: GkeTarget, *, model_name: str, version: str, uri: str, api=None) -> dict:
    """Apply the serving objects for ``uri`` (version ``version``) and wait for the rollout."""
    api = api or api_client()
    history = read_history(api, target.namespace, model_name)
    previous = history[-1]["version"] if history else None
    history = [*history, _entry(target, version, uri)]
    result = _apply_all(api, target, model_name, str(version), uri, history)
    return {**result, "previous_version": previous}


def rollback_gke(
    *,
    namespace: str,
    model_name: str,
    rollout_timeout_s: float = GkeTarget.rollout_timeout_s,
    api=None,
) -> dict:
    """Re-apply the version deployed before the current one as it was deployed (image,
    service account, replicas from its history entry), and wait for the rollout."""
    api = api or api_client()
    history = read_history(api, namespace, model_name)
    if len(history) < 2:
        raise GkeError(
            f"no previous version of {model_name!r} to roll back to in {namespace} "
            f"(deployed: {', '.join(h['version'] for h in history) or 'none'})"
        )
    current, history = history[-1], history[:-1]
    back = history[-1]
    try:
        target = GkeTarget(
            image=back.get("image", ""),
            namespace=namespace,
            service_account=back.get("service_account", GkeTarget.service_account),
            min_replicas=int(back.get("min_replicas", GkeTarget.min_replicas)),
            max_replicas=int(back.get("max_replicas", GkeTarget.max_replicas)),
            rollout_timeout_s=rollout_timeout_s,
        )
    except (ParameterError, ValueError) as exc:
        raise GkeError(
            f"the history entry of version {back['version']} is unusable: {exc}"
        ) from exc
    result = _apply_all(api, target, model_name, back["version"], back["uri"], history)
    return {**result, "previous_version": current["version"]}


def teardown_gke(namespace: str, *, api=None) -> list[str]:
    """Delete every Deployment, Service, HPA and PDB of ours (label ``MANAGED_BY``) in
    ``namespace``; the deleted objects as ``kind/name``."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = api or api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    autoscaling, policy = client.AutoscalingV2Api(api), client.PolicyV1Api(api)
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    calls = (
        ("HorizontalPodAutoscaler", autoscaling.list_namespaced_horizontal_pod_autoscaler,
         autoscaling.delete_namespaced_horizontal_pod_autoscaler),
        ("PodDisruptionBudget", policy.list_namespaced_pod_disruption_budget,
         policy.delete_namespaced_pod_disruption_budget),
        ("Service", core.list_namespaced_service, core.delete_namespaced_service),
        ("Deployment", apps.list_namespaced_deployment, apps.delete_namespaced_deployment),
    )  # fmt: skip
    deleted = []
    for kind, list_fn, delete_fn in calls:
        try:
            items = list_fn(namespace, label_selector=selector).items
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise _api_error(f"listing {kind}s in {namespace}", exc) from exc
        for item in items:
            try:
                delete_fn(
                    item.metadata.name,
                    namespace,
                    body=client.V1DeleteOptions(propagation_policy="Background"),
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise _api_error(f"deleting {kind} {item.metadata.name}", exc) from exc
            deleted.append(f"{kind}/{item.metadata.name}")
            log.info("deleted %s %s/%s", kind, namespace, item.metadata.name)
    return deleted
