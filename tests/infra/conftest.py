"""Program runs shared by the infra tests: each is one full run of infra/ under mocks."""

from __future__ import annotations

import pytest

from tests.infra.harness import ProgramRun, run_program, stack_config

# A non-default stack: regional, restricted endpoint, other KFP release and prefix.
CUSTOM = {
    "region": "europe-west4",
    "zone": "europe-west4-b",
    "regionalCluster": True,
    "masterAuthorizedNetworks": ["203.0.113.7/32", "198.51.100.0/24"],
    "kfpVersion": "2.15.0",
    "resourcePrefix": "kfp-test",
    "tempObjectTtlDays": 3,
    "registryKeepVersions": 4,
    "registryUntaggedDays": 30,
    "systemMachineType": "e2-medium",
    "pipelinesMaxNodes": 5,
    "releaseChannel": "stable",
}


@pytest.fixture(scope="session")
def default_run() -> ProgramRun:
    return run_program(stack_config())


@pytest.fixture(scope="session")
def protected_run() -> ProgramRun:
    return run_program(stack_config(protect=True))


@pytest.fixture(scope="session")
def keys_run() -> ProgramRun:
    return run_program(stack_config(serviceAccountKeys=True))


@pytest.fixture(scope="session")
def open_endpoint_run() -> ProgramRun:
    return run_program(stack_config(controlPlaneOpenToAnyAddress=True))


@pytest.fixture(scope="session")
def custom_run() -> ProgramRun:
    return run_program(stack_config(**CUSTOM))
