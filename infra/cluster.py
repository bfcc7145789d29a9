"""GKE Standard cluster with a small system pool and a spot pool for pipeline steps.

Security defaults, each with its reason (in the manner of the safer-cluster module):
- private nodes: nodes have no public IP, nothing on the internet can reach them;
- Workload Identity on the cluster and GKE_METADATA on every pool: pods get short-lived
  Google credentials per Kubernetes service account, never the node's, and the legacy
  metadata endpoints (which leak node credentials) are hidden;
- shielded nodes with secure boot and integrity monitoring: verified boot chain;
- a dedicated node service account with minimal roles, not the default compute account
  (which has project Editor);
- no legacy ABAC, no client certificate, no basic auth: only IAM/RBAC authenticate;
- Dataplane V2: Kubernetes NetworkPolicy is enforced if a workload defines one;
- release channel with auto-upgrade and auto-repair: security patches arrive unattended;
- default node pool removed: every node belongs to a pool defined here;
- closed control plane: no IP range reaches the API server unless the stack names it.
  kubectl and Pulumi use the DNS-based endpoint, where Google's front end checks IAM
  (``container.clusters.connect``) before a request reaches the API server, from any
  workstation or CI runner without knowing its address. The IP endpoint stays private
  (nodes use it) unless masterAuthorizedNetworks names ranges, or
  controlPlaneOpenToAnyAddress opens it to everyone on purpose.

``paused`` takes the system pool to zero nodes: autoscaling is switched off (the
autoscaler alone never removes a node running kube-system pods) and the pool is resized to
0. KFP's pods stop; its persistent volumes stay and reattach when ``paused`` is false again
and autoscaling brings the node back. The initial node count never changes (it would
replace the pool).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_gcp as gcp

from components.common.placement import PIPELINES_LABEL, PIPELINES_TAINT
from infra.config import Settings
from infra.network import PODS_RANGE, SERVICES_RANGE, Network
from infra.options import child_options

# Pipeline steps tolerate the pipelines taint and select its label (one definition,
# shared with the pipeline); nothing else lands on the spot pool, so KFP's own services
# never run on nodes that can be reclaimed.
SYSTEM_LABEL = {"pool": "system"}
# Access is decided by IAM roles of the node service account; the broad scope only stops
# scopes from silently narrowing them.
OAUTH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# Hides the legacy (v1beta1) metadata endpoints.
NODE_METADATA = {"disable-legacy-endpoints": "true"}
AUTH_PLUGIN = "gke-gcloud-auth-plugin"


def _pool_node_config(
    settings: Settings,
    *,
    machine_type: str,
    service_account: pulumi.Input[str],
    network_tag: str,
    labels: dict[str, str],
    spot: bool = False,
    taints: list[gcp.container.NodePoolNodeConfigTaintArgs] | None = None,
) -> gcp.container.NodePoolNodeConfigArgs:
    return gcp.container.NodePoolNodeConfigArgs(
        machine_type=machine_type,
        disk_size_gb=settings.node_disk_size_gb,
        # Standard persistent disk: the boot disk does little I/O and costs a third.
        disk_type="pd-standard",
        image_type="COS_CONTAINERD",
        spot=spot,
        service_account=service_account,
        oauth_scopes=OAUTH_SCOPES,
        workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
            mode="GKE_METADATA"
        ),
        shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
            enable_secure_boot=True, enable_integrity_monitoring=True
        ),
        metadata=NODE_METADATA,
        labels=labels,
        resource_labels=settings.labels,
        taints=taints,
        tags=[network_tag],
    )


class GkeCluster(pulumi.ComponentResource):
    """The cluster, its two node pools and a kubeconfig that uses gke-gcloud-auth-plugin."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        network: Network,
        node_service_account: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crypto-kfp:infra:GkeCluster", name, None, opts)
        # With `protect`, the engine refuses to delete the cluster or its pools, so `pulumi
        # destroy` fails at its preview before deleting anything. GKE's deletion_protection
        # alone is checked only when the cluster itself is deleted: by then a destroy has
        # removed the pools, the KFP install and the IAM grants.
        protected = child_options(self, opts, protect=settings.protect)
        authorized = settings.master_authorized_networks
        open_to_any = settings.control_plane_open_to_any_address
        if open_to_any:
            pulumi.log.warn(open_endpoint_warning(), resource=self)

        self.cluster = gcp.container.Cluster(
            f"{name}-cluster",
            name=settings.name("gke"),
            project=settings.project,
            # Zonal by default: one control plane zone is free under GKE's free tier and
            # nodes are not tripled across zones. Regional is a setting for production.
            location=settings.cluster_location,
            network=network.vpc.id,
            subnetwork=network.subnet.id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=PODS_RANGE,
                services_secondary_range_name=SERVICES_RANGE,
            ),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                # No public IP endpoint unless the stack names who may use it (or opens it
                # to everyone on purpose); the nodes use the private one.
                enable_private_endpoint=not (authorized or open_to_any),
                master_ipv4_cidr_block=settings.master_cidr,
            ),
            # How workstations, CI and the program's Kubernetes provider reach the API
            # server: a DNS name whose requests Google authorises with IAM first.
            control_plane_endpoints_config=gcp.container.ClusterControlPlaneEndpointsConfigArgs(
                dns_endpoint_config=gcp.container.ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgs(
                    allow_external_traffic=True
                ),
            ),
            # Authorised networks on, with only the named ranges (none by default), and not
            # every Google Cloud address either. Only controlPlaneOpenToAnyAddress turns the
            # list off, which lets any address reach the public endpoint.
            master_authorized_networks_config=None
            if open_to_any
            else gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=cidr, display_name=f"authorised-{i}"
                    )
                    for i, cidr in enumerate(authorized)
                ],
                gcp_public_cidrs_access_enabled=False,
            ),
            # Pods get Google credentials per Kubernetes service account, never the node's.
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{settings.project}.svc.id.goog"
            ),
            # Verified boot chain on every node.
            enable_shielded_nodes=True,
            # Only IAM and RBAC authorise requests: legacy ABAC grants broad static rights.
            enable_legacy_abac=False,
            # No client certificate: it would be a long-lived credential that cannot be revoked.
            master_auth=gcp.container.ClusterMasterAuthArgs(
                client_certificate_config=gcp.container.ClusterMasterAuthClientCertificateConfigArgs(
                    issue_client_certificate=False
                )
            ),
            # Dataplane V2: NetworkPolicy is enforced, at no extra cost.
            datapath_provider="ADVANCED_DATAPATH",
            # Security patches arrive through the channel without anyone scheduling them.
            release_channel=gcp.container.ClusterReleaseChannelArgs(
                channel=settings.release_channel
            ),
            # GKE insists on creating a default pool; it is deleted right away so every node
            # comes from a pool below. While it exists it runs as the minimal node account
            # with Workload Identity metadata, like every other node.
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=node_service_account,
                oauth_scopes=OAUTH_SCOPES,
                disk_type="pd-standard",
                workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                shielded_instance_config=gcp.container.ClusterNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                metadata=NODE_METADATA,
            ),
            resource_labels=settings.labels,
            # Disposable dev stack by default; `protect` makes destroy refuse.
            deletion_protection=settings.protect,
            # nodeConfig only shapes the short-lived default pool. Once it is removed the
            # API reports another pool's config, and a diff there would replace the cluster.
            opts=child_options(self, opts, protect=settings.protect, ignore_changes=["nodeConfig"]),
        )

        management = gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True)
        self.system_pool = gcp.container.NodePool(
            f"{name}-system",
            name="system",
            cluster=self.cluster.id,
            location=self.cluster.location,
            initial_node_count=settings.system_min_nodes,
            # Paused: no autoscaling and zero nodes. Resumed: node_count is left to the
            # autoscaler, which scales up for KFP's pending pods.
            autoscaling=None
            if settings.paused
            else gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=settings.system_min_nodes,
                total_max_node_count=settings.system_max_nodes,
            ),
            node_count=0 if settings.paused else None,
            management=management,
            node_config=_pool_node_config(
                settings,
                machine_type=settings.system_machine_type,
                service_account=node_service_account,
                network_tag=network.node_tag,
                labels=SYSTEM_LABEL,
            ),
            opts=protected,
        )
        self.pipelines_pool = gcp.container.NodePool(
            f"{name}-pipelines",
            name="pipelines",
            cluster=self.cluster.id,
            location=self.cluster.location,
            # Starts empty and scales back to zero: no cost while no pipeline step runs.
            initial_node_count=settings.pipelines_min_nodes,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=settings.pipelines_min_nodes,
                total_max_node_count=settings.pipelines_max_nodes,
                # Spot capacity differs per zone; take whichever zone has some.
                location_policy="ANY",
            ),
            management=management,
            node_config=_pool_node_config(
                settings,
                machine_type=settings.pipelines_machine_type,
                service_account=node_service_account,
                network_tag=network.node_tag,
                labels=PIPELINES_LABEL,
                spot=settings.pipelines_spot,
                taints=[gcp.container.NodePoolNodeConfigTaintArgs(**PIPELINES_TAINT)],
            ),
            opts=protected,
        )

        # Holds no credential, but names the endpoint and CA: kept out of logs and plain state.
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name,
                self.cluster.control_plane_endpoints_config.dns_endpoint_config.endpoint,
            ).apply(lambda args: kubeconfig(settings.project, settings.cluster_location, *args))
        )
        self.register_outputs({"name": self.cluster.name, "kubeconfig": self.kubeconfig})


def open_endpoint_warning() -> str:
    """The warning shown while the control-plane IP endpoint accepts any source address."""
    return (
        "controlPlaneOpenToAnyAddress is true: the GKE control-plane IP endpoint accepts "
        "connections from any address (every request still needs Google credentials). Close "
        "it with: pulumi config set controlPlaneOpenToAnyAddress false (kubectl keeps working "
        "through the DNS endpoint), or restrict it to your address with: pulumi config set "
        "--path 'masterAuthorizedNetworks[0]' <your-ip>/32"
    )


def kubeconfig(project: str, location: str, name: str, dns_endpoint: str) -> str:
    """A kubeconfig for the DNS-based endpoint that holds no credential:
    gke-gcloud-auth-plugin fetches a short-lived token from the caller's gcloud login each
    time. The DNS endpoint is served by Google's front end with a publicly trusted
    certificate, so the file carries no cluster CA (as ``gcloud container clusters
    get-credentials --dns-endpoint`` writes it)."""
    context = f"gke_{project}_{location}_{name}"
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {"server": f"https://{dns_endpoint}"},
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": AUTH_PLUGIN,
                            "installHint": "Install gke-gcloud-auth-plugin: "
                            "gcloud components install gke-gcloud-auth-plugin",
                            "provideClusterInfo": True,
                        }
                    },
                }
            ],
        },
        indent=2,
    )
