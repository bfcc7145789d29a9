"""The Kubeflow Pipelines install and its GCP patches."""

from __future__ import annotations

import json

import pulumi

from tests.infra import checks
from tests.infra.checks import CONFIG_MAP_PATCH, DIRECTORY, K8S_PROVIDER, SERVICE_ACCOUNT_PATCH
from tests.infra.harness import dig, is_secret, unwrap


def test_kfp_directories_pinned_to_the_default_release_and_ordered(default_run):
    checks.check_kfp_directories(default_run, "2.17.0")


def test_kfp_directories_follow_the_configured_release(custom_run):
    checks.check_kfp_directories(custom_run, "2.15.0")


def test_install_is_platform_agnostic_never_dev(default_run):
    paths = [d.inputs["directory"] for d in default_run.of_type(DIRECTORY)]
    assert not [p for p in paths if "env/dev" in p]
    assert any("/env/platform-agnostic?" in p for p in paths)


def test_install_waits_for_nodes_and_the_webhook_rule(default_run):
    platform = next(
        d for d in default_run.of_type(DIRECTORY) if "platform-agnostic" in d.inputs["directory"]
    )
    system_pool = checks.pool(default_run, "system")
    firewall = default_run.one(checks.FIREWALL, "network-master-webhooks")
    assert system_pool.urn in platform.dependencies
    assert firewall.urn in platform.dependencies


def test_kubernetes_resources_use_the_gke_provider_with_a_secret_kubeconfig(default_run):
    provider = default_run.one(K8S_PROVIDER)
    assert is_secret(provider.inputs["kubeconfig"]), "the kubeconfig reaches the provider unmarked"
    kubeconfig = json.loads(unwrap(provider.inputs["kubeconfig"]))
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    # Without an explicit provider, resources would go to whatever cluster the local
    # kubeconfig points at.
    reference = f"{provider.urn}::{provider.name}-id"
    for directory in default_run.of_type(DIRECTORY):
        assert directory.providers.get("kubernetes") == reference, directory.urn
    for patch in default_run.of_type(CONFIG_MAP_PATCH) + default_run.of_type(SERVICE_ACCOUNT_PATCH):
        assert patch.provider == reference, patch.urn


def test_no_config_map_field_is_owned_by_both_the_directory_and_a_patch(default_run, custom_run):
    # Every ConfigMap of the install is rendered by a Directory, so any patch of one shares
    # fields with it; the pipeline root is passed with each run instead (submit).
    for run in (default_run, custom_run):
        assert run.of_type(CONFIG_MAP_PATCH) == [], [p.urn for p in run.of_type(CONFIG_MAP_PATCH)]
    patched = {
        (dig(p.inputs, "metadata", "namespace"), dig(p.inputs, "metadata", "name"))
        for p in default_run.resources
        if p.type.startswith("kubernetes:") and p.type.endswith("Patch")
    }
    assert patched == {("kubeflow", "pipeline-runner"), ("kubeflow", "ml-pipeline-ui")}
    for patch in default_run.of_type(SERVICE_ACCOUNT_PATCH):
        # Only annotations, which the manifests' ServiceAccounts do not set.
        assert set(patch.inputs) <= {"metadata", "apiVersion", "kind"}, patch.urn
        assert set(patch.inputs["metadata"]) <= {"name", "namespace", "annotations"}, patch.urn


@pulumi.runtime.test
def test_the_pipeline_root_is_a_stack_output_that_submit_passes(default_run):
    # tests/pipeline/test_submit.py checks that submit sends it as the run's pipeline_root.
    artifacts = checks.bucket(default_run, "artifacts").inputs["name"]
    root = default_run.outputs["pipeline_root"]
    return root.apply(lambda value: _check_root(value, artifacts))


def _check_root(value: str, artifacts: str) -> None:
    assert value == f"gs://{artifacts}/pipeline-root"


def test_kfp_service_accounts_are_annotated_for_workload_identity(default_run):
    annotations = {
        dig(p.inputs, "metadata", "name"): dig(
            p.inputs, "metadata", "annotations", "iam.gke.io/gcp-service-account"
        )
        for p in default_run.of_type(SERVICE_ACCOUNT_PATCH)
    }
    assert annotations == {
        "pipeline-runner": checks.account_email(default_run, "pipeline"),
        "ml-pipeline-ui": checks.account_email(default_run, "kfp-ui"),
    }
    namespaces = {
        dig(p.inputs, "metadata", "namespace") for p in default_run.of_type(SERVICE_ACCOUNT_PATCH)
    }
    assert namespaces == {"kubeflow"}
