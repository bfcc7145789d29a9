"""Where the deploy step serves the model, and exactly what it may touch there.

GKE (``deploy_target=gke``): the ``serving`` namespace, the model server's Kubernetes
service account (bound through Workload Identity to the serving Google account, which may
only read the models bucket), and a Role that lets KFP's ``pipeline-runner`` manage the
serving objects in that namespace and nothing else. Nothing here is cluster-wide.

Vertex AI (``deploy_target=vertex``): the endpoint is a Pulumi resource, so ``pulumi
destroy`` deletes it; the models deployed onto it are the deploy step's and go first (see
``VertexEndpoint``).

Placement: serving pods run on the ``system`` pool (``SERVING_NODE_SELECTOR``), not on the
pipelines pool. Spot VMs can be reclaimed at any moment with 30 seconds' notice, several at
once, and a PodDisruptionBudget does not hold a preemption back, so every replica of the
server can vanish together; the pipelines pool also scales to zero, so the first request
after an idle spell would wait minutes for a node. The system pool is on-demand, untainted
and always has a node while the stack is not paused (``make pause`` stops serving too).
The autoscaler adds system nodes, up to systemMaxNodes, when replicas do not fit.

Firewall: nothing new. The control plane reaches the nodes on GKE's own rules (kubelet,
443) and the existing webhook rule; the serving objects add no admission webhook, and the
HorizontalPodAutoscaler reads metrics inside the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra.cluster import SYSTEM_LABEL
from infra.config import Settings
from infra.identity import (
    KFP_NAMESPACE,
    SERVING_KSA,
    SERVING_NAMESPACE,
    WORKLOAD_IDENTITY,
)
from infra.kubeflow import WORKLOAD_IDENTITY_ANNOTATION
from infra.options import child_options

# The node label serving pods select (output ``serving_node_selector``; reasons above).
SERVING_NODE_SELECTOR = dict(SYSTEM_LABEL)

# Pod Security Admission: ``restricted`` is enforced, not only warned about. The model
# server needs no privilege (no root, no host namespace or path, no added capability), and
# pipeline-runner may create Deployments here: without enforcement a compromised step
# could start a privileged pod and own the node. ``latest`` follows the cluster's own
# version of the profile as the release channel upgrades it.
POD_SECURITY_LEVEL = "restricted"
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
    "pod-security.kubernetes.io/warn-version": "latest",
    "pod-security.kubernetes.io/audit": POD_SECURITY_LEVEL,
    "pod-security.kubernetes.io/audit-version": "latest",
}

MANAGE = ("get", "list", "watch", "create", "update", "patch", "delete")
READ = ("get", "list", "watch")
# (API group, resources, verbs): what the deploy step applies in the serving namespace
# (Deployment, Service, HPA, PDB, and the ConfigMap with its version history), and the
# pods and events it reads to report why a rollout failed. Nothing else, no wildcard.
SERVING_RULES = (
    ("apps", ("deployments",), MANAGE),
    ("", ("services", "configmaps"), MANAGE),
    ("autoscaling", ("horizontalpodautoscalers",), MANAGE),
    ("policy", ("poddisruptionbudgets",), MANAGE),
    ("", ("pods", "events"), READ),
)
# Step pods (the deploy step among them) run as this KFP service account.
DEPLOYER_KSA = WORKLOAD_IDENTITY["pipeline"]
DEPLOYER_ROLE = "serving-deployer"


class ServingNamespace(pulumi.ComponentResource):
    """The serving namespace, the model server's KSA, and the deploy step's Role there."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        provider: k8s.Provider,
        serving_account_email: pulumi.Input[str],
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crypto-kfp:infra:ServingNamespace", name, None, opts)
        labels = dict(settings.labels)
        on_cluster = pulumi.ResourceOptions(
            parent=self, provider=provider, depends_on=list(depends_on)
        )
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SERVING_NAMESPACE, labels={**labels, **POD_SECURITY_LABELS}
            ),
            opts=on_cluster,
        )
        in_namespace = pulumi.ResourceOptions.merge(
            on_cluster, pulumi.ResourceOptions(depends_on=[self.namespace])
        )

        def metadata(object_name: str, **extra) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=SERVING_NAMESPACE, labels=labels, **extra
            )

        # The model server reads the models bucket as the serving Google account (the
        # binding is in WorkloadIdentityBindings); no key anywhere.
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-{SERVING_KSA}",
            metadata=metadata(
                SERVING_KSA, annotations={WORKLOAD_IDENTITY_ANNOTATION: serving_account_email}
            ),
            opts=in_namespace,
        )
        self.role = k8s.rbac.v1.Role(
            f"{name}-deployer-role",
            metadata=metadata(DEPLOYER_ROLE),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[group], resources=list(resources), verbs=list(verbs)
                )
                for group, resources, verbs in SERVING_RULES
            ],
            opts=in_namespace,
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-deployer-binding",
            metadata=metadata(DEPLOYER_ROLE),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=DEPLOYER_ROLE
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=DEPLOYER_KSA, namespace=KFP_NAMESPACE
                )
            ],
            opts=pulumi.ResourceOptions.merge(
                in_namespace, pulumi.ResourceOptions(depends_on=[self.role])
            ),
        )
        self.register_outputs({"namespace": SERVING_NAMESPACE})


class VertexEndpoint(pulumi.ComponentResource):
    """The Vertex AI endpoint the deploy step deploys model versions onto.

    Teardown order (``make destroy``): Vertex AI refuses to delete an endpoint that still
    has deployed models, and neither those deployments nor the Model Registry versions are
    in Pulumi's state. So ``python -m components.deploy teardown`` runs first: it
    undeploys every model from this endpoint and deletes the models the deploy step
    uploaded. Only then does ``pulumi destroy`` delete the endpoint, the serving namespace
    (with whatever a GKE deploy applied in it) and the accounts.
    """

    def __init__(
        self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crypto-kfp:infra:VertexEndpoint", name, None, opts)
        self.endpoint = gcp.vertex.AiEndpoint(
            f"{name}-endpoint",
            project=settings.project,
            location=settings.region,
            region=settings.region,
            display_name=settings.endpoint_display_name,
            description="Next-day BTC close forecasts (deploy_target=vertex)",
            labels={**settings.labels, "purpose": "serving"},
            # The deploy step owns the traffic split (new version 100%, previous 0% for
            # rollback); Pulumi must never reset it.
            opts=child_options(self, opts, ignore_changes=["trafficSplit"]),
        )
        self.display_name = self.endpoint.display_name
        # What the aiplatform clients take: projects/<p>/locations/<region>/endpoints/<id>.
        self.resource_name = pulumi.Output.concat(
            "projects/",
            settings.project,
            "/locations/",
            settings.region,
            "/endpoints/",
            self.endpoint.name,
        )
        self.register_outputs(
            {"display_name": self.display_name, "resource_name": self.resource_name}
        )
