"""VPC, subnet with pod/service ranges, Cloud NAT, and the control-plane webhook rule."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options

PODS_RANGE = "pods"
SERVICES_RANGE = "services"
# Kubeflow Pipelines' cache server is a mutating admission webhook on 8443, which GKE's own
# private-cluster rules (443, 10250 from the control plane) do not open. In KFP 2.17 it
# matters little: the webhook selects only v1 pods (its pipelines.kubeflow.org/cache_enabled
# label), so v2 step and driver pods never reach it, and its failurePolicy is Ignore. The
# rule is kept so the API server's calls for v1 pods do not each wait for a timeout.
WEBHOOK_PORTS = ("8443",)
# Dataflow workers shuffle and exchange data with each other on these ports; every Dataflow
# VM carries the network tag "dataflow", so the rule admits exactly worker-to-worker traffic.
DATAFLOW_WORKER_PORTS = ("12345-12346",)
DATAFLOW_TAG = "dataflow"


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
            description="GKE control plane to KFP's cache webhook on private nodes (reached "
            "only for v1 pods in KFP 2.17)",
            opts=child,
        )
        self.dataflow_firewall = gcp.compute.Firewall(
            f"{name}-dataflow-workers",
            name=settings.name("dataflow-workers"),
            network=self.vpc.id,
            direction="INGRESS",
            source_tags=[DATAFLOW_TAG],
            target_tags=[DATAFLOW_TAG],
            allows=[
                gcp.compute.FirewallAllowArgs(protocol="tcp", ports=list(DATAFLOW_WORKER_PORTS))
            ],
            description="Dataflow worker to worker (shuffle, data exchange) on the private VPC",
            opts=child,
        )
        # What Dataflow's --subnetwork takes.
        self.subnetwork_path = self.subnet.name.apply(
            lambda n: f"regions/{settings.region}/subnetworks/{n}"
        )
        self.register_outputs({"vpc": self.vpc.id, "subnet": self.subnet.id})
