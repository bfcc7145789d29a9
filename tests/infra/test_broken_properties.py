"""The checks catch a broken property: each test breaks one on purpose and expects failure.

Program-level: the real program runs with one setting of an infra module changed, and the
same check the other tests use must raise. Output-level: the helper used by the output
tests, given a wrong value inside ``@pulumi.runtime.test``, must fail the test.
"""

from __future__ import annotations

from dataclasses import replace

import pulumi
import pytest

import infra.cluster
import infra.config
import infra.identity
import infra.network
import infra.serving
import infra.stack
import infra.storage
from tests.infra import checks
from tests.infra import test_serving as serving_tests
from tests.infra.harness import run_program, stack_config
from tests.infra.test_outputs import expect_outputs


def test_webhook_rule_on_the_wrong_port_is_caught(monkeypatch):
    monkeypatch.setattr(infra.network, "WEBHOOK_PORTS", ("443",))
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match="tcp 8443"):
        checks.check_webhook_firewall(run)


def test_untainted_pipelines_pool_is_caught(monkeypatch):
    monkeypatch.setattr(
        infra.cluster, "PIPELINES_TAINT", {"key": "other", "value": "x", "effect": "NO_SCHEDULE"}
    )
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match="taints"):
        checks.check_pipelines_pool(run)


def test_project_editor_grant_is_caught(monkeypatch):
    monkeypatch.setattr(
        infra.identity,
        "PROJECT_ROLES",
        {**infra.identity.PROJECT_ROLES, "vertex": ("roles/editor",)},
    )
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match="primitive role roles/editor"):
        checks.check_no_primitive_roles(run)


def test_project_wide_storage_grant_is_caught(monkeypatch):
    monkeypatch.setattr(
        infra.identity,
        "PROJECT_ROLES",
        {**infra.identity.PROJECT_ROLES, "vertex": ("roles/storage.objectViewer",)},
    )
    run = run_program(stack_config())
    with pytest.raises(
        AssertionError, match="storage role roles/storage.objectViewer granted on gcp:projects"
    ):
        checks.check_storage_roles_on_buckets(run)


def test_pulumi_protected_scratch_bucket_is_caught(monkeypatch):
    temp = infra.storage.BUCKETS["dataflow_temp"]
    monkeypatch.setattr(
        infra.storage,
        "BUCKETS",
        {**infra.storage.BUCKETS, "dataflow_temp": replace(temp, holds_data=True)},
    )
    run = run_program(stack_config(protect=True))
    with pytest.raises(AssertionError, match="Pulumi-protected"):
        checks.check_pulumi_protect(run, protect=True)


def test_missing_endpoint_warning_is_caught(monkeypatch):
    monkeypatch.setattr(infra.cluster.pulumi.log, "warn", lambda *args, **kwargs: None)
    run = run_program(stack_config(controlPlaneOpenToAnyAddress=True))
    with pytest.raises(AssertionError, match="expected one warning"):
        checks.check_open_endpoint_warning(run)


def test_public_endpoint_in_the_default_stack_is_caught(monkeypatch):
    real = infra.cluster.gcp.container.ClusterPrivateClusterConfigArgs

    def public_endpoint(**kwargs):
        return real(**{**kwargs, "enable_private_endpoint": False})

    monkeypatch.setattr(
        infra.cluster.gcp.container, "ClusterPrivateClusterConfigArgs", public_endpoint
    )
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match="the public IP endpoint is on"):
        checks.check_closed_control_plane(run)


def test_wrong_output_value_fails_a_pulumi_runtime_test():
    outputs = {"pipeline_root": pulumi.Output.from_input("gs://some-other-bucket/root")}

    def check(values):
        assert values["pipeline_root"].startswith("gs://demo-project-123-crypto-kfp-artifacts/")

    @pulumi.runtime.test
    def broken():
        return expect_outputs(outputs, check)

    # The assertion runs inside apply(); returning the Output is what makes it count.
    with pytest.raises(AssertionError):
        broken()


@pytest.mark.parametrize("role", ["roles/aiplatform.user", "roles/logging.logWriter"])
def test_any_project_role_for_the_serving_account_is_caught(monkeypatch, role):
    monkeypatch.setattr(
        infra.identity, "PROJECT_ROLES", {**infra.identity.PROJECT_ROLES, "serving": (role,)}
    )
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match=f"project-level role {role} for the serving"):
        checks.check_serving_account_grants(run)


def test_serving_account_on_another_bucket_is_caught(monkeypatch):
    monkeypatch.setattr(
        infra.identity,
        "BUCKET_ROLES",
        {**infra.identity.BUCKET_ROLES, ("serving", "artifacts"): (infra.identity.VIEW,)},
    )
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match="serving account grants"):
        checks.check_serving_account_grants(run)


def test_an_extra_permission_in_the_serving_role_is_caught(monkeypatch):
    monkeypatch.setattr(
        infra.serving,
        "SERVING_RULES",
        (*infra.serving.SERVING_RULES, ("", ("secrets",), infra.serving.READ)),
    )
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match=r"extra \[\('', 'secrets', 'get'\)"):
        checks.check_serving_role(run)


def test_a_missing_permission_in_the_serving_role_is_caught(monkeypatch):
    monkeypatch.setattr(infra.serving, "SERVING_RULES", infra.serving.SERVING_RULES[:-1])
    run = run_program(stack_config())
    with pytest.raises(AssertionError, match=r"missing \[\('', 'events', 'get'\)"):
        checks.check_serving_role(run)


def test_serving_on_the_spot_pool_is_caught(monkeypatch):
    monkeypatch.setattr(infra.stack, "SERVING_NODE_SELECTOR", {"pool": "pipelines"})
    run = run_program(stack_config())
    with pytest.raises(AssertionError):
        serving_tests.test_serving_pods_select_the_on_demand_untainted_system_pool(run)


def test_a_wrong_endpoint_output_is_caught(monkeypatch):
    monkeypatch.setattr(infra.config, "ENDPOINT_SUFFIX", "other")
    run = run_program(stack_config())
    with pytest.raises(AssertionError):
        serving_tests.test_serving_outputs(run)
