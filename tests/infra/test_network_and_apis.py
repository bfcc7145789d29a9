"""Required APIs, the VPC, Cloud NAT and the control-plane-to-webhook firewall rule."""

from __future__ import annotations

from tests.infra import checks
from tests.infra.checks import SERVICE
from tests.infra.harness import ProgramRun

REQUIRED = {
    "container.googleapis.com",
    "compute.googleapis.com",
    "artifactregistry.googleapis.com",
    "storage.googleapis.com",
    "dataflow.googleapis.com",
    "aiplatform.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "cloudbuild.googleapis.com",
}


def test_required_apis_enabled_and_never_disabled_on_destroy(default_run):
    services = default_run.of_type(SERVICE)
    assert REQUIRED <= {s.inputs["service"] for s in services}
    for service in services:
        assert service.inputs.get("disableOnDestroy") is False, service.urn
        assert service.inputs.get("disableDependentServices") is False, service.urn


def _transitive_dependencies(run: ProgramRun, urn: str, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    for dependency in run.by_urn(urn).dependencies:
        if dependency not in seen:
            seen.add(dependency)
            _transitive_dependencies(run, dependency, seen)
    return seen


def test_every_cloud_resource_waits_for_every_api(default_run):
    # Pulumi does not pass a component's depends_on to its children; this fails if a
    # component forgets to, and the resource could be created before its API is on.
    services = {s.urn for s in default_run.of_type(SERVICE)}
    resources = [
        r
        for r in default_run.resources
        if r.custom and r.type != SERVICE and not r.type.startswith("pulumi:providers:")
    ]
    assert len(resources) > 40
    for resource in resources:
        missing = services - _transitive_dependencies(default_run, resource.urn)
        assert not missing, f"{resource.urn} does not wait for {sorted(missing)}"


def test_custom_mode_vpc_and_private_google_access(default_run):
    vpc = default_run.one("gcp:compute/network:Network")
    assert vpc.inputs["autoCreateSubnetworks"] is False
    subnet = default_run.one("gcp:compute/subnetwork:Subnetwork")
    assert subnet.inputs["privateIpGoogleAccess"] is True
    assert subnet.inputs["ipCidrRange"] == "10.10.0.0/20"
    assert {r["rangeName"]: r["ipCidrRange"] for r in subnet.inputs["secondaryIpRanges"]} == {
        "pods": "10.20.0.0/16",
        "services": "10.30.0.0/20",
    }


def test_cloud_nat_serves_the_cluster_subnet(default_run):
    nat = default_run.one("gcp:compute/routerNat:RouterNat")
    subnet = default_run.one("gcp:compute/subnetwork:Subnetwork")
    router = default_run.one("gcp:compute/router:Router")
    assert nat.inputs["router"] == router.inputs["name"]
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat.inputs["subnetworks"] == [
        {"name": f"{subnet.name}-id", "sourceIpRangesToNats": ["ALL_IP_RANGES"]}
    ]


def test_control_plane_reaches_webhooks_on_8443(default_run):
    checks.check_webhook_firewall(default_run)


def test_firewall_opens_nothing_else(default_run):
    ports = {"network-master-webhooks": ["8443"], "network-dataflow-workers": ["12345-12346"]}
    rules = default_run.of_type(checks.FIREWALL)
    assert sorted(r.name for r in rules) == sorted(ports)
    for rule in rules:
        assert rule.inputs.get("sourceRanges") != ["0.0.0.0/0"], rule.urn
        assert all(a["ports"] == ports[rule.name] for a in rule.inputs["allows"]), rule.urn


def test_dataflow_workers_reach_each_other_on_12345_12346_only(default_run):
    rule = default_run.one(checks.FIREWALL, "network-dataflow-workers")
    assert rule.inputs["direction"] == "INGRESS", rule.urn
    assert rule.inputs["sourceTags"] == ["dataflow"], rule.urn
    assert rule.inputs["targetTags"] == ["dataflow"], rule.urn
    assert "sourceRanges" not in rule.inputs, f"{rule.urn}: only tagged workers may connect"
    assert rule.inputs["allows"] == [{"protocol": "tcp", "ports": ["12345-12346"]}], rule.urn
    vpc = default_run.one("gcp:compute/network:Network")
    assert rule.inputs["network"] == f"{vpc.name}-id", rule.urn


def test_webhook_rule_comment_gives_the_true_reason(default_run):
    rule = default_run.one(checks.FIREWALL, "network-master-webhooks")
    assert "v1 pods" in rule.inputs["description"], rule.urn
