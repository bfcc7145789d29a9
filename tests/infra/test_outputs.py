"""Stack outputs: everything the build and submit steps read, with the right values.

Every check of an Output runs inside the Output (``apply``) in a test decorated with
``@pulumi.runtime.test`` that returns it, so a failing assertion fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi

from tests.infra.harness import DNS_ENDPOINT, GCP_PROJECT

EXPECTED_OUTPUTS = {
    "project",
    "region",
    "zone",
    "cluster_location",
    "cluster_name",
    "kubeconfig",
    "kfp_namespace",
    "kfp_version",
    "pipeline_root",
    "raw_bucket",
    "artifacts_bucket",
    "dataflow_temp_bucket",
    "dataflow_staging_bucket",
    "models_bucket",
    "build_source_bucket",
    "registry_url",
    "pipeline_service_account",
    "dataflow_service_account",
    "vertex_service_account",
    "node_service_account",
    "kfp_ui_service_account",
    "build_service_account",
    "pipelines_node_selector",
    "pipelines_toleration",
    "protect",
    "dataflow_subnetwork",
    "labels",
    "vertex_staging_uri",
    "serving_namespace",
    "serving_k8s_service_account",
    "serving_service_account",
    "serving_node_selector",
    "vertex_endpoint",
    "vertex_endpoint_id",
}
PREFIX = f"{GCP_PROJECT}-crypto-kfp"


def expect_outputs(
    outputs: dict[str, Any], check: Callable[[dict[str, Any]], None]
) -> pulumi.Output:
    """An Output that resolves every stack output and runs ``check`` on the plain values."""
    names = sorted(outputs)
    return pulumi.Output.all(*(outputs[n] for n in names)).apply(
        lambda values: check(dict(zip(names, values, strict=True)))
    )


def test_every_stack_output_is_present(default_run, keys_run):
    assert set(default_run.outputs) == EXPECTED_OUTPUTS
    assert set(keys_run.outputs) == EXPECTED_OUTPUTS | {"service_account_keys"}


@pulumi.runtime.test
def test_location_and_cluster_outputs(default_run):
    def check(v):
        assert (v["project"], v["region"], v["zone"], v["cluster_location"]) == (
            GCP_PROJECT,
            "us-central1",
            "us-central1-a",
            "us-central1-a",
        )
        assert v["cluster_name"] == "crypto-kfp-gke"
        assert v["kfp_namespace"] == "kubeflow"
        assert v["kfp_version"] == "2.17.0"
        assert v["protect"] is False

    return expect_outputs(default_run.outputs, check)


@pulumi.runtime.test
def test_bucket_uris_and_pipeline_root(default_run):
    def check(v):
        assert v["raw_bucket"] == f"gs://{PREFIX}-raw"
        assert v["artifacts_bucket"] == f"gs://{PREFIX}-artifacts"
        assert v["dataflow_temp_bucket"] == f"gs://{PREFIX}-df-temp"
        assert v["dataflow_staging_bucket"] == f"gs://{PREFIX}-df-staging"
        assert v["models_bucket"] == f"gs://{PREFIX}-models"
        assert v["pipeline_root"] == f"{v['artifacts_bucket']}/pipeline-root"

    return expect_outputs(default_run.outputs, check)


@pulumi.runtime.test
def test_registry_url_is_region_project_repository(default_run, custom_run):
    def check(urls):
        assert urls == [
            f"us-central1-docker.pkg.dev/{GCP_PROJECT}/crypto-kfp-images",
            f"europe-west4-docker.pkg.dev/{GCP_PROJECT}/kfp-test-images",
        ]

    return pulumi.Output.all(
        default_run.outputs["registry_url"], custom_run.outputs["registry_url"]
    ).apply(check)


@pulumi.runtime.test
def test_service_account_emails(default_run):
    def check(v):
        for output, account in (
            ("pipeline_service_account", "pipeline"),
            ("dataflow_service_account", "dataflow"),
            ("vertex_service_account", "vertex"),
            ("node_service_account", "nodes"),
            ("kfp_ui_service_account", "kfp-ui"),
            ("serving_service_account", "serving"),
            ("build_service_account", "build"),
        ):
            assert v[output] == f"crypto-kfp-{account}@{GCP_PROJECT}.iam.gserviceaccount.com", (
                output
            )

    return expect_outputs(default_run.outputs, check)


@pulumi.runtime.test
def test_pipeline_scheduling_hints_match_the_pool(default_run):
    def check(v):
        assert v["pipelines_node_selector"] == {"pool": "pipelines"}
        assert v["pipelines_toleration"] == {
            "key": "pool",
            "operator": "Equal",
            "value": "pipelines",
            "effect": "NoSchedule",
        }

    return expect_outputs(default_run.outputs, check)


@pulumi.runtime.test
def test_kubeconfig_is_a_secret_and_uses_the_auth_plugin(default_run):
    kubeconfig = default_run.outputs["kubeconfig"]

    def check(values):
        secret, text = values
        assert secret is True, "kubeconfig is not a secret output"
        config = json.loads(text)
        context = f"gke_{GCP_PROJECT}_us-central1-a_crypto-kfp-gke"
        assert config["current-context"] == context
        # The IAM-authorised DNS endpoint (publicly trusted certificate, so no cluster CA),
        # not the IP endpoint, which is private by default.
        assert config["clusters"][0]["cluster"] == {"server": f"https://{DNS_ENDPOINT}"}
        user = config["users"][0]["user"]
        assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
        # No static credential in the file: tokens come from the plugin at use time.
        assert set(user) == {"exec"}

    return pulumi.Output.all(pulumi.Output.from_input(kubeconfig.is_secret()), kubeconfig).apply(
        check
    )


@pulumi.runtime.test
def test_cloud_backend_outputs(default_run):
    def check(v):
        assert v["dataflow_subnetwork"] == "regions/us-central1/subnetworks/crypto-kfp-subnet"
        assert v["vertex_staging_uri"] == f"{v['artifacts_bucket']}/vertex-staging"
        assert v["labels"] and all(isinstance(x, str) for x in v["labels"].values())

    return expect_outputs(default_run.outputs, check)
