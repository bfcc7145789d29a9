"""Config errors stop the program before any resource, with the promised messages."""

from __future__ import annotations

import re

import pytest

from infra.config import ConfigError
from tests.infra import harness
from tests.infra.harness import run_program, stack_config


def config_error(**overrides) -> str:
    """Run the program with the given config; return the ConfigError message."""
    with pytest.raises(ConfigError) as raised:
        run_program(stack_config(**overrides))
    assert harness.last_monitor is not None and harness.last_monitor.registered == [], (
        "resources were registered before the config was validated"
    )
    return str(raised.value)


def test_missing_gcp_project_names_the_key_and_the_command():
    message = config_error(**{"gcp:project": None})
    assert "gcp:project: missing" in message
    assert "pulumi config set gcp:project <your-project-id>" in message


def test_invalid_gcp_project_id():
    message = config_error(**{"gcp:project": "My_Project"})
    assert "'My_Project' is not a valid project id" in message
    assert "pulumi config set gcp:project" in message


def test_min_nodes_greater_than_max_nodes():
    message = config_error(systemMinNodes=4, systemMaxNodes=2)
    assert "systemMinNodes: min 4 is greater than systemMaxNodes 2" in message
    assert "pulumi config set systemMinNodes 2" in message


def test_pipelines_min_greater_than_max():
    message = config_error(pipelinesMinNodes=3, pipelinesMaxNodes=1)
    assert "pipelinesMinNodes: min 3 is greater than pipelinesMaxNodes 1" in message
    assert "pulumi config set pipelinesMinNodes 1" in message


@pytest.mark.parametrize("version", ["latest", "2.17", "v2.17.0", "1.8.5", "master"])
def test_bad_kfp_version(version):
    message = config_error(kfpVersion=version)
    assert (
        f"kfpVersion: '{version}' is not a Kubeflow Pipelines 2.x release tag such as 2.17.0"
        in message
    )
    assert "pulumi config set kfpVersion 2.17.0" in message


def test_every_problem_is_reported_at_once():
    message = config_error(**{"gcp:project": None, "kfpVersion": "latest", "systemMinNodes": 5})
    problems = re.findall(r"^  - (\S+):", message, flags=re.MULTILINE)
    assert problems == ["gcp:project", "systemMinNodes", "kfpVersion"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"zone": "europe-west4-a"},
            "zone: 'europe-west4-a' is not a zone of region 'us-central1'",
        ),
        ({"systemMaxNodes": "three"}, "systemMaxNodes: 'three' is not a whole number"),
        ({"protect": "yes"}, "protect: 'yes' is not true or false"),
        ({"podsCidr": "10.10.0.0/16"}, "podsCidr: 10.10.0.0/16 overlaps subnetCidr 10.10.0.0/20"),
        ({"masterCidr": "172.16.0.0/24"}, "masterCidr: '172.16.0.0/24' must be a /28 range"),
        (
            {"subnetCidr": "fd00::/64"},
            "subnetCidr: 'fd00::/64' is not an IPv4 network in CIDR form",
        ),
        (
            {"masterAuthorizedNetworks": ["my-laptop"]},
            "masterAuthorizedNetworks: 'my-laptop' is not a CIDR range",
        ),
        (
            {"releaseChannel": "beta"},
            "releaseChannel: 'BETA' is not one of RAPID, REGULAR, STABLE, EXTENDED",
        ),
        ({"resourcePrefix": "Crypto_KFP"}, "resourcePrefix: 'Crypto_KFP' must be 3-20 lower case"),
        ({"tempObjectTtlDays": 0}, "tempObjectTtlDays: 0 is outside 1..365"),
        ({"registryUntaggedDays": 0}, "registryUntaggedDays: 0 is outside 1..3650"),
        (
            {"controlPlaneOpenToAnyAddress": True, "masterAuthorizedNetworks": ["203.0.113.7/32"]},
            "controlPlaneOpenToAnyAddress: true contradicts masterAuthorizedNetworks",
        ),
        ({"paused": "maybe"}, "paused: 'maybe' is not true or false"),
        (
            {"billingAccount": "my-account", "monthlyBudget": 50},
            "billingAccount: 'MY-ACCOUNT' is not a billing account id",
        ),
    ],
)
def test_other_invalid_values_name_the_key(overrides, expected):
    message = config_error(**overrides)
    assert expected in message
    key = next(iter(overrides))
    assert re.search(rf"Fix it with: pulumi config set (--path ')?{key}\b", message), message


@pytest.mark.parametrize(
    ("overrides", "missing", "example"),
    [
        ({"billingAccount": "012345-6789AB-CDEF01"}, "monthlyBudget", "100"),
        ({"monthlyBudget": 50}, "billingAccount", "012345-6789AB-CDEF01"),
    ],
)
def test_a_budget_needs_both_settings(overrides, missing, example):
    message = config_error(**overrides)
    assert f"{missing}: a budget needs both billingAccount and monthlyBudget" in message
    assert f"Fix it with: pulumi config set {missing} {example}" in message
