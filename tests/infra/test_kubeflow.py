"""The Kubeflow Pipelines install and its GCP patches."""

from __future__ import annotations

import json

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
    firewall = default_run.one(checks.FIREWALL)
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


def test_pipeline_root_patch_of_kfp_launcher_names_the_artifacts_bucket(default_run):
    checks.check_pipeline_root_patch(default_run)


def test_pipeline_install_config_gets_the_same_root_and_patches_follow_the_install(default_run):
    patches = {dig(p.inputs, "metadata", "name"): p for p in default_run.of_type(CONFIG_MAP_PATCH)}
    assert set(patches) == {"kfp-launcher", "pipeline-install-config"}
    roots = {dig(p.inputs, "data", "defaultPipelineRoot") for p in patches.values()}
    artifacts = checks.bucket(default_run, "artifacts").inputs["name"]
    assert roots == {f"gs://{artifacts}/pipeline-root"}
    platform = next(
        d for d in default_run.of_type(DIRECTORY) if "platform-agnostic" in d.inputs["directory"]
    )
    for patch in patches.values():
        # The install owns these fields too; only a forced patch may take them over.
        assert dig(patch.inputs, "metadata", "annotations", "pulumi.com/patchForce") == "true", (
            patch.urn
        )
        assert platform.urn in patch.dependencies, patch.urn


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
