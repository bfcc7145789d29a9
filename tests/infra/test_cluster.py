"""GKE cluster and node pools: security, cost and scheduling properties."""

from __future__ import annotations

from tests.infra import checks
from tests.infra.checks import CLUSTER, PROJECT_IAM, REPOSITORY_IAM
from tests.infra.harness import GCP_PROJECT, dig, run_program, stack_config


def test_nodes_are_private(default_run):
    checks.check_private_nodes(default_run)


def test_control_plane_range_is_the_configured_28(default_run):
    cluster = default_run.one(CLUSTER)
    assert dig(cluster.inputs, "privateClusterConfig", "masterIpv4CidrBlock") == "172.16.0.32/28"


def test_workload_identity_on_cluster_and_every_node_pool(default_run):
    checks.check_workload_identity(default_run)


def test_shielded_nodes_on_cluster_and_every_pool(default_run):
    checks.check_shielded_nodes(default_run)


def test_default_node_pool_is_removed(default_run):
    checks.check_default_pool_removed(default_run)


def test_no_legacy_abac_and_no_client_certificate(default_run):
    cluster = default_run.one(CLUSTER)
    assert cluster.inputs.get("enableLegacyAbac") is False
    assert (
        dig(cluster.inputs, "masterAuth", "clientCertificateConfig", "issueClientCertificate")
        is False
    )


def test_release_channel_and_auto_upgrade(default_run):
    assert dig(default_run.one(CLUSTER).inputs, "releaseChannel", "channel") == "REGULAR"
    for pool in checks.node_pools(default_run):
        assert pool.inputs["management"] == {"autoRepair": True, "autoUpgrade": True}, pool.urn


def test_cluster_is_vpc_native_on_the_subnet_ranges(default_run):
    cluster = default_run.one(CLUSTER)
    subnet = default_run.one("gcp:compute/subnetwork:Subnetwork")
    ranges = {r["rangeName"] for r in subnet.inputs["secondaryIpRanges"]}
    policy = cluster.inputs["ipAllocationPolicy"]
    assert {policy["clusterSecondaryRangeName"], policy["servicesSecondaryRangeName"]} == ranges
    assert cluster.inputs["subnetwork"] == f"{subnet.name}-id"


def test_pipelines_pool_is_spot_tainted_labelled_and_scales_from_zero(default_run):
    checks.check_pipelines_pool(default_run)


def test_system_pool_is_small_on_demand_untainted_and_autoscaled(default_run):
    system = checks.pool(default_run, "system")
    config = system.inputs["nodeConfig"]
    assert config["machineType"] == "e2-standard-2"
    assert config.get("spot") is False
    # KFP's own pods carry no toleration: they must find an untainted pool.
    assert not config.get("taints")
    assert system.inputs["autoscaling"] == {"totalMinNodeCount": 1, "totalMaxNodeCount": 3}


def test_every_pool_runs_as_the_node_service_account(default_run):
    nodes = checks.account_email(default_run, "nodes")
    cluster = default_run.one(CLUSTER)
    for resource in [cluster, *checks.node_pools(default_run)]:
        assert dig(resource.inputs, "nodeConfig", "serviceAccount") == nodes, resource.urn
        assert (
            dig(resource.inputs, "nodeConfig", "metadata", "disable-legacy-endpoints") == "true"
        ), resource.urn


def test_node_service_account_has_only_node_roles(default_run):
    nodes_member = f"serviceAccount:{checks.account_email(default_run, 'nodes')}"
    project_roles = {
        r.inputs["role"]
        for r in default_run.of_type(PROJECT_IAM)
        if r.inputs["member"] == nodes_member
    }
    assert project_roles == {"roles/container.defaultNodeServiceAccount"}
    repository_roles = {
        r.inputs["role"]
        for r in default_run.of_type(REPOSITORY_IAM)
        if r.inputs["member"] == nodes_member
    }
    assert repository_roles == {"roles/artifactregistry.reader"}
    other = [
        r.urn
        for r in default_run.resources
        if r.inputs.get("member") == nodes_member and r.type not in (PROJECT_IAM, REPOSITORY_IAM)
    ]
    assert other == []


def test_zonal_cluster_and_closed_control_plane_by_default(default_run):
    cluster = default_run.one(CLUSTER)
    assert cluster.inputs["location"] == "us-central1-a"
    checks.check_closed_control_plane(default_run)
    assert cluster.inputs["workloadIdentityConfig"]["workloadPool"] == f"{GCP_PROJECT}.svc.id.goog"


def test_no_endpoint_warning_by_default(default_run):
    assert not any("controlPlaneOpenToAnyAddress" in w for w in default_run.warnings), (
        default_run.warnings
    )


def test_open_to_any_address_only_with_the_explicit_setting(open_endpoint_run):
    cluster = open_endpoint_run.one(CLUSTER)
    assert dig(cluster.inputs, "privateClusterConfig", "enablePrivateEndpoint") is False
    # No authorised-networks block: GKE lets every address reach the public endpoint.
    assert "masterAuthorizedNetworksConfig" not in cluster.inputs
    dns = dig(cluster.inputs, "controlPlaneEndpointsConfig", "dnsEndpointConfig")
    assert dns["allowExternalTraffic"] is True


def test_open_endpoint_warns_naming_the_setting_and_the_fix(open_endpoint_run):
    checks.check_open_endpoint_warning(open_endpoint_run)


def test_open_endpoint_warns_at_preview():
    run = run_program(stack_config(controlPlaneOpenToAnyAddress=True), preview=True)
    checks.check_open_endpoint_warning(run)


def test_no_endpoint_warning_with_authorised_networks(custom_run):
    assert not any("controlPlaneOpenToAnyAddress" in w for w in custom_run.warnings), (
        custom_run.warnings
    )


def test_regional_cluster_with_authorised_networks_from_config(custom_run):
    cluster = custom_run.one(CLUSTER)
    assert cluster.inputs["location"] == "europe-west4"
    blocks = dig(cluster.inputs, "masterAuthorizedNetworksConfig", "cidrBlocks")
    assert [b["cidrBlock"] for b in blocks] == ["203.0.113.7/32", "198.51.100.0/24"]
    # Named ranges reach the public IP endpoint, nobody else.
    assert dig(cluster.inputs, "privateClusterConfig", "enablePrivateEndpoint") is False
    assert (
        dig(cluster.inputs, "masterAuthorizedNetworksConfig", "gcpPublicCidrsAccessEnabled")
        is False
    )
    assert dig(cluster.inputs, "releaseChannel", "channel") == "STABLE"
    for pool in checks.node_pools(custom_run):
        assert pool.inputs["location"] == "europe-west4", pool.urn
    assert checks.pool(custom_run, "system").inputs["nodeConfig"]["machineType"] == "e2-medium"
    assert checks.pool(custom_run, "pipelines").inputs["autoscaling"]["totalMaxNodeCount"] == 5


def test_node_config_drift_cannot_replace_the_cluster(default_run):
    assert "nodeConfig" in default_run.one(CLUSTER).ignore_changes
