"""VPC, subnet with pod/service ranges, Cloud NAT, and the control-plane webhook rule."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options

PODS_RANGE = "pods"
SERVICES_RANGE = "services"
# Kubeflow Pipelines' cache server is an admission webhook listening on 8443. GKE's own
# firewall rules for private clusters only open 443 and 10250 from the control plane, so
# without this rule every pod creation in kubeflow waits for the webhook and times out.
WEBHOOK_PORTS = ("8443",)


class Network(pulumi.ComponentResource):
    """A dedicated VPC so the cluster's ranges and firewall rules are owned by this stack."""

    def __init__(
        self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crypto-kfp:infra:Network", name, None, opts)
        child = child_options(self, opts)
        # Network tag on every node, so firewall rules target this cluster's nodes only.
        self.node_tag = settings.name("gke-node")

        self.vpc = gcp.compute.Network(
            f"{name}-vpc",
            name=settings.name("vpc"),
            # Custom subnets only: auto mode would create a subnet in every region with
            # ranges this stack does not control.
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child,
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            name=settings.name("subnet"),
            region=settings.region,
            network=self.vpc.id,
            ip_cidr_range=settings.subnet_cidr,
            # Private nodes have no external address; this lets them reach Google APIs
            # (GCS, Artifact Registry, Vertex AI) without going through NAT.
            private_ip_google_access=True,
            # VPC-native cluster: pods and services get their own secondary ranges.
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=PODS_RANGE, ip_cidr_range=settings.pods_cidr
                ),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=SERVICES_RANGE, ip_cidr_range=settings.services_cidr
                ),
            ],
            opts=child,
        )
        self.router = gcp.compute.Router(
            f"{name}-router",
            name=settings.name("router"),
            region=settings.region,
            network=self.vpc.id,
            opts=child,
        )
        self.nat = gcp.compute.RouterNat(
            f"{name}-nat",
            name=settings.name("nat"),
            region=settings.region,
            router=self.router.name,
            # Private nodes still pull public images (e.g. KFP's from ghcr.io/gcr.io) and
            # reach GitHub; NAT gives them egress without an inbound path.
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(
                    name=self.subnet.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"]
                ),
            ],
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )
        self.webhook_firewall = gcp.compute.Firewall(
            f"{name}-master-webhooks",
            name=settings.name("master-to-webhooks"),
            network=self.vpc.id,
            direction="INGRESS",
            # Only the control plane's range, only to this cluster's nodes, only the port.
            source_ranges=[settings.master_cidr],
            target_tags=[self.node_tag],
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=list(WEBHOOK_PORTS))],
            description="GKE control plane to admission webhooks (KFP cache server) on "
            "private nodes",
            opts=child,
        )
        self.register_outputs({"vpc": self.vpc.id, "subnet": self.subnet.id})
