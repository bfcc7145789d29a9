"""``paused`` takes the system pool to zero and back; a budget exists only when asked."""

from __future__ import annotations

import pytest

from tests.infra import checks
from tests.infra.checks import BUDGET, CLUSTER, DIRECTORY, SERVICE
from tests.infra.harness import (
    GCP_PROJECT,
    GCP_PROJECT_NUMBER,
    GET_PROJECT,
    ProgramRun,
    dig,
    run_program,
    stack_config,
)

BILLING_ACCOUNT = "012345-6789AB-CDEF01"


@pytest.fixture(scope="module")
def paused_run() -> ProgramRun:
    return run_program(stack_config(paused=True))


@pytest.fixture(scope="module")
def budget_run() -> ProgramRun:
    return run_program(stack_config(billingAccount=BILLING_ACCOUNT.lower(), monthlyBudget=80))


def test_paused_system_pool_has_zero_nodes_and_no_autoscaler(paused_run):
    system = checks.pool(paused_run, "system")
    # The autoscaler alone keeps a node for kube-system pods; off, the pool is resized to 0.
    assert system.inputs["nodeCount"] == 0, system.urn
    assert "autoscaling" not in system.inputs, system.urn
    # A changed initial node count would replace the pool.
    assert system.inputs["initialNodeCount"] == 1, system.urn


def test_resumed_system_pool_is_autoscaled_again(default_run):
    system = checks.pool(default_run, "system")
    assert system.inputs["autoscaling"] == {"totalMinNodeCount": 1, "totalMaxNodeCount": 3}
    assert "nodeCount" not in system.inputs, "a fixed node count would fight the autoscaler"
    assert system.inputs["initialNodeCount"] == 1


def test_pausing_changes_only_the_system_pool(default_run, paused_run):
    # Same resources (KFP, its volumes' claims, buckets, the cluster): nothing is deleted.
    assert sorted((r.type, r.name) for r in paused_run.resources) == sorted(
        (r.type, r.name) for r in default_run.resources
    )
    default = {(r.type, r.name): r.inputs for r in default_run.resources}
    changed = {r.name for r in paused_run.resources if r.inputs != default[(r.type, r.name)]}
    assert changed == {"gke-system"}, changed
    assert paused_run.one(CLUSTER).inputs == default_run.one(CLUSTER).inputs
    assert len(paused_run.of_type(DIRECTORY)) == 2


def test_paused_stack_still_scales_pipelines_from_zero(paused_run):
    checks.check_pipelines_pool(paused_run)


def test_no_budget_without_the_settings(default_run, protected_run, keys_run):
    for run in (default_run, protected_run, keys_run):
        assert not run.of_type(BUDGET)
        assert "billingbudgets.googleapis.com" not in {
            s.inputs["service"] for s in run.of_type(SERVICE)
        }
        assert run.calls == [], run.calls


def test_budget_on_the_project_with_three_thresholds(budget_run):
    budget = budget_run.one(BUDGET)
    assert budget.inputs["billingAccount"] == BILLING_ACCOUNT
    assert dig(budget.inputs, "budgetFilter", "projects") == [f"projects/{GCP_PROJECT_NUMBER}"]
    assert dig(budget.inputs, "amount", "specifiedAmount", "units") == "80"
    rules = budget.inputs["thresholdRules"]
    assert [r["thresholdPercent"] for r in rules] == [0.5, 0.9, 1.0]
    assert {r["spendBasis"] for r in rules} == {"CURRENT_SPEND"}
    assert budget_run.calls == [(GET_PROJECT, {"projectId": GCP_PROJECT})]


def test_budget_api_is_enabled_and_the_budget_waits_for_it(budget_run):
    api = next(
        s
        for s in budget_run.of_type(SERVICE)
        if s.inputs["service"] == "billingbudgets.googleapis.com"
    )
    assert api.inputs["disableOnDestroy"] is False
    budget = budget_run.one(BUDGET)
    assert api.urn in budget.dependencies


def test_budget_calls_bill_the_project_as_quota_project(budget_run):
    budget = budget_run.one(BUDGET)
    provider = next(r for r in budget_run.of_type("pulumi:providers:gcp"))
    assert budget.provider.startswith(provider.urn)
    assert provider.inputs["billingProject"] == GCP_PROJECT
    assert provider.inputs["userProjectOverride"] in (True, "true")
