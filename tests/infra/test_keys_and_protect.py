"""Keys only on request; `protect` switches between a disposable and a kept stack."""

from __future__ import annotations

import json

import pulumi

from tests.infra import checks
from tests.infra.checks import K8S_PROVIDER, K8S_SECRET, KEY
from tests.infra.harness import GCP_PROJECT, dig, is_secret, unwrap


def test_no_keys_unless_asked(default_run, protected_run):
    checks.check_no_keys(default_run)
    checks.check_no_keys(protected_run)


def test_keys_when_asked_for_the_pipeline_account(keys_run):
    keys = keys_run.of_type(KEY)
    assert len(keys) == 1
    email = checks.account_email(keys_run, "pipeline")
    assert keys[0].inputs["serviceAccountId"] == f"projects/{GCP_PROJECT}/serviceAccounts/{email}"


def test_keys_are_stored_as_a_secret_in_the_kfp_namespace(keys_run):
    secret = keys_run.one(K8S_SECRET)
    assert dig(secret.inputs, "metadata", "namespace") == "kubeflow"
    assert dig(secret.inputs, "metadata", "name") == "crypto-kfp-pipeline-key"
    string_data = secret.inputs["stringData"]
    assert is_secret(string_data), "the key reaches the engine unmarked as a secret"
    assert json.loads(unwrap(string_data)["key.json"])["type"] == "service_account"
    provider = keys_run.one(K8S_PROVIDER)
    assert secret.provider == f"{provider.urn}::{provider.name}-id"
    cluster_scoped = next(
        d for d in keys_run.of_type(checks.DIRECTORY) if "cluster-scoped" in d.inputs["directory"]
    )
    assert cluster_scoped.urn in secret.dependencies, (
        "the Secret may be created before the kubeflow namespace"
    )


@pulumi.runtime.test
def test_keys_are_a_secret_stack_output(keys_run):
    output = keys_run.outputs["service_account_keys"]

    def check(values):
        secret, keys = values
        assert secret is True, "service_account_keys is not a secret output"
        assert set(keys) == {"crypto-kfp-pipeline"}
        assert json.loads(keys["crypto-kfp-pipeline"])["type"] == "service_account"

    return pulumi.Output.all(pulumi.Output.from_input(output.is_secret()), output).apply(check)


def test_default_stack_is_disposable(default_run):
    checks.check_protection(default_run, protect=False)


def test_protected_stack_keeps_cluster_and_data(protected_run):
    checks.check_protection(protected_run, protect=True)


def test_default_stack_pulumi_protects_nothing(default_run):
    checks.check_pulumi_protect(default_run, protect=False)


def test_protected_stack_pulumi_protects_cluster_pools_and_data_buckets(protected_run):
    # GKE's deletion_protection alone lets destroy remove the pools and everything on them
    # before it fails on the cluster; Pulumi's protect makes the engine refuse.
    checks.check_pulumi_protect(protected_run, protect=True)
    for purpose in checks.SCRATCH_BUCKETS:
        assert checks.bucket(protected_run, purpose).protect is False, (
            f"{purpose} bucket is not disposable"
        )
