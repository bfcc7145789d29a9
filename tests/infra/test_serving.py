"""Serving: the serving account, the namespace and its RBAC, and the Vertex AI endpoint."""

from __future__ import annotations

import pulumi
import pytest

from tests.infra import checks
from tests.infra.checks import (
    ACCOUNT_IAM,
    CLUSTER,
    FIREWALL,
    K8S_PROVIDER,
    K8S_SERVICE_ACCOUNT,
    NAMESPACE,
    PROJECT_IAM,
    ROLE,
    ROLE_BINDING,
    VERTEX_ENDPOINT,
)
from tests.infra.harness import ENDPOINT_ID, GCP_PROJECT, dig, run_program, stack_config
from tests.infra.test_config import config_error
from tests.infra.test_outputs import expect_outputs

SERVING_EMAIL = f"crypto-kfp-serving@{GCP_PROJECT}.iam.gserviceaccount.com"
SERVING_ID = f"projects/{GCP_PROJECT}/serviceAccounts/{SERVING_EMAIL}"
MODEL_SERVER_MEMBER = f"serviceAccount:{GCP_PROJECT}.svc.id.goog[serving/model-server]"
PIPELINE_MEMBER = f"serviceAccount:crypto-kfp-pipeline@{GCP_PROJECT}.iam.gserviceaccount.com"


# --- the serving Google account ----------------------------------------------------------


def test_serving_account_only_reads_the_models_bucket(default_run, custom_run):
    for run in (default_run, custom_run):
        checks.check_serving_account_grants(run)


def test_serving_account_has_no_project_level_role(default_run):
    project_members = {r.inputs["member"] for r in default_run.of_type(PROJECT_IAM)}
    assert f"serviceAccount:{SERVING_EMAIL}" not in project_members


def test_who_may_use_the_serving_account(default_run):
    # Grants *on* the serving account: the model server's KSA may act as it, the pipeline
    # may deploy Vertex AI models that run as it, nobody else and nothing more.
    on_serving = {
        (r.inputs["role"], r.inputs["member"])
        for r in default_run.of_type(ACCOUNT_IAM)
        if r.inputs["serviceAccountId"] == SERVING_ID
    }
    assert on_serving == {
        ("roles/iam.workloadIdentityUser", MODEL_SERVER_MEMBER),
        ("roles/iam.serviceAccountUser", PIPELINE_MEMBER),
    }


def test_model_server_binding_waits_for_the_cluster(default_run):
    binding = next(
        r for r in default_run.of_type(ACCOUNT_IAM) if r.inputs["member"] == MODEL_SERVER_MEMBER
    )
    assert default_run.one(CLUSTER).urn in binding.dependencies


# --- the serving namespace ---------------------------------------------------------------


def test_serving_namespace_enforces_the_restricted_pod_security_standard(default_run):
    namespace = default_run.one(NAMESPACE)
    assert dig(namespace.inputs, "metadata", "name") == "serving"
    labels = dig(namespace.inputs, "metadata", "labels")
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest", mode
    assert {labels[k] for k in ("app", "stack", "managed-by")} == {"crypto-kfp", "dev", "pulumi"}


def test_model_server_service_account_is_annotated_with_the_serving_account(default_run):
    ksa = default_run.one(K8S_SERVICE_ACCOUNT)
    assert (dig(ksa.inputs, "metadata", "namespace"), dig(ksa.inputs, "metadata", "name")) == (
        "serving",
        "model-server",
    )
    assert dig(ksa.inputs, "metadata", "annotations") == {
        "iam.gke.io/gcp-service-account": SERVING_EMAIL
    }
    assert default_run.one(NAMESPACE).urn in ksa.dependencies


def test_the_deploy_role_allows_exactly_the_serving_objects(default_run):
    checks.check_serving_role(default_run)


def test_the_role_is_bound_to_pipeline_runner_only(default_run):
    binding = default_run.one(ROLE_BINDING)
    assert dig(binding.inputs, "metadata", "namespace") == "serving"
    assert binding.inputs["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": dig(default_run.one(ROLE).inputs, "metadata", "name"),
    }
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]


def test_nothing_cluster_wide_is_declared(default_run):
    kinds = {r.type.rsplit(":", 1)[-1] for r in default_run.resources if r.type.startswith("k")}
    assert not {k for k in kinds if k.startswith("ClusterRole")}, kinds
    # One namespace of our own; every namespaced object we declare is in serving or a
    # patch of KFP's accounts in kubeflow.
    assert len(default_run.of_type(NAMESPACE)) == 1


def test_serving_objects_go_to_the_gke_provider_after_the_system_pool(default_run):
    provider = default_run.one(K8S_PROVIDER)
    reference = f"{provider.urn}::{provider.name}-id"
    system_pool = checks.pool(default_run, "system")
    for r in [
        default_run.one(NAMESPACE),
        default_run.one(K8S_SERVICE_ACCOUNT),
        default_run.one(ROLE),
        default_run.one(ROLE_BINDING),
    ]:
        assert r.provider == reference, r.urn
        # Serving pods run there; destroy removes the namespace while nodes still exist.
        assert system_pool.urn in r.dependencies, r.urn


# --- placement and firewall -----------------------------------------------------------------


@pulumi.runtime.test
def test_serving_pods_select_the_on_demand_untainted_system_pool(default_run):
    system = checks.pool(default_run, "system").inputs["nodeConfig"]

    def check(v):
        selector = v["serving_node_selector"]
        assert selector == {"pool": "system"}
        # The pool it selects: labelled so, not spot, no taint to tolerate.
        assert selector.items() <= system["labels"].items()
        assert not system.get("spot") and not system.get("taints")
        assert selector != v["pipelines_node_selector"]

    return expect_outputs(default_run.outputs, check)


def test_the_control_plane_reaches_nothing_new(default_run):
    # The same two rules as before serving: control plane to the KFP webhook on 8443 only,
    # and Dataflow worker to worker.
    assert {f.name for f in default_run.of_type(FIREWALL)} == {
        "network-master-webhooks",
        "network-dataflow-workers",
    }
    checks.check_webhook_firewall(default_run)
    master = dig(default_run.one(CLUSTER).inputs, "privateClusterConfig", "masterIpv4CidrBlock")
    from_master = [
        f for f in default_run.of_type(FIREWALL) if master in f.inputs.get("sourceRanges", [])
    ]
    assert [a["ports"] for f in from_master for a in f.inputs["allows"]] == [["8443"]]


# --- the Vertex AI endpoint -------------------------------------------------------------------


def test_vertex_endpoint_in_the_stack_region_with_labels(default_run, custom_run):
    for run, region, name in (
        (default_run, "us-central1", "crypto-kfp-forecast"),
        (custom_run, "europe-west4", "kfp-test-forecast"),
    ):
        endpoint = run.one(VERTEX_ENDPOINT)
        assert endpoint.inputs["location"] == region
        assert endpoint.inputs["region"] == region
        assert endpoint.inputs["project"] == GCP_PROJECT
        assert endpoint.inputs["displayName"] == name
        assert endpoint.inputs["labels"]["purpose"] == "serving"
        assert {"app", "stack", "managed-by"} <= set(endpoint.inputs["labels"])
        # Shared regional DNS, no peering: what the deploy step's clients call.
        assert "network" not in endpoint.inputs
        assert not endpoint.inputs.get("dedicatedEndpointEnabled")


def test_vertex_endpoint_is_deleted_by_pulumi_destroy(default_run, protected_run):
    for run in (default_run, protected_run):
        endpoint = run.one(VERTEX_ENDPOINT)
        # Not protected, not retained, not abandoned: destroy deletes it (after the deploy
        # step's teardown has undeployed its models).
        assert not endpoint.protect and not endpoint.retain_on_delete, endpoint.urn
        assert endpoint.inputs.get("deletionPolicy", "DELETE") == "DELETE"


def test_vertex_endpoint_traffic_is_left_to_the_deploy_step(default_run):
    endpoint = default_run.one(VERTEX_ENDPOINT)
    assert "trafficSplit" not in endpoint.inputs
    assert endpoint.ignore_changes == ["trafficSplit"]


def test_vertex_endpoint_waits_for_the_vertex_api(default_run):
    endpoint = default_run.one(VERTEX_ENDPOINT)
    api = next(
        s
        for s in default_run.of_type(checks.SERVICE)
        if s.inputs["service"] == "aiplatform.googleapis.com"
    )
    assert api.urn in endpoint.dependencies


def test_vertex_endpoint_name_from_the_setting():
    run = run_program(stack_config(vertexEndpointName="BTC forecast (prod) ✓"))
    assert run.one(VERTEX_ENDPOINT).inputs["displayName"] == "BTC forecast (prod) ✓"


@pytest.mark.parametrize("name", ["x" * 129, "two\nlines"])
def test_a_bad_vertex_endpoint_name_is_refused(name):
    message = config_error(vertexEndpointName=name)
    assert "vertexEndpointName:" in message
    assert "must be at most 128 characters without control characters" in message
    assert "pulumi config set vertexEndpointName" in message


# --- stack outputs ------------------------------------------------------------------------


@pulumi.runtime.test
def test_serving_outputs(default_run):
    def check(v):
        assert v["serving_namespace"] == "serving"
        assert v["serving_k8s_service_account"] == "model-server"
        assert v["serving_service_account"] == SERVING_EMAIL
        assert v["vertex_endpoint"] == "crypto-kfp-forecast"
        assert v["vertex_endpoint_id"] == (
            f"projects/{GCP_PROJECT}/locations/us-central1/endpoints/{ENDPOINT_ID}"
        )

    return expect_outputs(default_run.outputs, check)


@pulumi.runtime.test
def test_serving_outputs_name_what_the_program_created(default_run):
    namespace = default_run.one(NAMESPACE)
    ksa = default_run.one(K8S_SERVICE_ACCOUNT)

    def check(v):
        assert v["serving_namespace"] == dig(namespace.inputs, "metadata", "name")
        assert v["serving_k8s_service_account"] == dig(ksa.inputs, "metadata", "name")
        annotation = dig(ksa.inputs, "metadata", "annotations", "iam.gke.io/gcp-service-account")
        assert v["serving_service_account"] == annotation
        assert v["vertex_endpoint"] == default_run.one(VERTEX_ENDPOINT).inputs["displayName"]

    return expect_outputs(default_run.outputs, check)
