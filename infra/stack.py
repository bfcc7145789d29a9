"""Composes the components into the whole stack and returns its outputs."""

from __future__ import annotations

from typing import Any

import pulumi

from components.common.placement import PIPELINES_LABEL, PIPELINES_TOLERATION
from infra.apis import ProjectApis
from infra.budget import ProjectBudget
from infra.cluster import GkeCluster
from infra.config import Settings
from infra.identity import SERVING_KSA, SERVING_NAMESPACE, ServiceAccounts, WorkloadIdentityBindings
from infra.keys import KEYED_ACCOUNTS, ServiceAccountKeys
from infra.kubeflow import KubeflowPipelines
from infra.network import Network
from infra.registry import ContainerRegistry
from infra.serving import SERVING_NODE_SELECTOR, ServingNamespace, VertexEndpoint
from infra.storage import VERTEX_STAGING_PREFIX, Buckets

# Stack outputs for every service account, named after its role in the pipeline.
ACCOUNT_OUTPUTS = {
    "pipeline": "pipeline_service_account",
    "dataflow": "dataflow_service_account",
    "vertex": "vertex_service_account",
    "serving": "serving_service_account",
    "nodes": "node_service_account",
    "kfp-ui": "kfp_ui_service_account",
    # cloudbuild.yaml's _BUILD_SERVICE_ACCOUNT (make images BUILDER=cloudbuild).
    "build": "build_service_account",
}
BUCKET_OUTPUTS = {
    "raw": "raw_bucket",
    "artifacts": "artifacts_bucket",
    "dataflow_temp": "dataflow_temp_bucket",
    "dataflow_staging": "dataflow_staging_bucket",
    "models": "models_bucket",
    # gcloud builds submit --gcs-source-staging-dir (make images BUILDER=cloudbuild).
    "build_source": "build_source_bucket",
}


def build_stack(settings: Settings) -> dict[str, Any]:
    """Declare every resource; return the stack outputs (name -> value or Output)."""
    apis = ProjectApis("apis", settings.project)
    after_apis = pulumi.ResourceOptions(depends_on=[apis])

    network = Network("network", settings, opts=after_apis)
    storage = Buckets("storage", settings, opts=after_apis)
    registry = ContainerRegistry("registry", settings, opts=after_apis)
    identity = ServiceAccounts(
        "identity", settings, storage.buckets, registry.repository, opts=after_apis
    )
    gke = GkeCluster("gke", settings, network, identity.emails["nodes"], opts=after_apis)
    workload_identity = WorkloadIdentityBindings(
        "workload-identity",
        settings,
        identity,
        opts=pulumi.ResourceOptions(depends_on=[gke.cluster]),
    )
    kfp = KubeflowPipelines(
        "kfp",
        settings,
        kubeconfig=gke.kubeconfig,
        pipeline_root=storage.pipeline_root,
        service_account_emails=identity.emails,
        # KFP's pods need the system nodes, its cache webhook needs the 8443 rule, and its
        # pipeline-runner needs a working identity binding before the first run.
        depends_on=[gke.system_pool, network.webhook_firewall, workload_identity],
    )

    ServingNamespace(
        "serving",
        settings,
        provider=kfp.provider,
        serving_account_email=identity.emails["serving"],
        # Serving pods run on the system pool; on destroy the namespace (and any pod the
        # deploy step left in it) goes while the nodes are still there.
        depends_on=[gke.system_pool],
    )
    # make destroy runs `python -m components.deploy teardown` before `pulumi destroy`:
    # the endpoint can only be deleted once no model is deployed on it (VertexEndpoint).
    endpoint = VertexEndpoint("vertex", settings, opts=after_apis)

    outputs: dict[str, Any] = {
        "project": settings.project,
        "region": settings.region,
        "zone": settings.zone,
        "cluster_location": settings.cluster_location,
        "cluster_name": gke.cluster.name,
        "kubeconfig": gke.kubeconfig,
        "kfp_namespace": kfp.namespace,
        "kfp_version": settings.kfp_version,
        "pipeline_root": storage.pipeline_root,
        "registry_url": registry.url,
        "pipelines_node_selector": dict(PIPELINES_LABEL),
        "pipelines_toleration": dict(PIPELINES_TOLERATION),
        "protect": settings.protect,
        # The transform's Dataflow job and the Vertex AI tuning job (gcp profile).
        "dataflow_subnetwork": network.subnetwork_path,
        "labels": dict(settings.labels),
        "vertex_staging_uri": storage.buckets["artifacts"].name.apply(
            lambda n: f"gs://{n}/{VERTEX_STAGING_PREFIX}"
        ),
        # The deploy step's targets: gke (namespace, KSA, placement) and vertex (endpoint).
        "serving_namespace": SERVING_NAMESPACE,
        "serving_k8s_service_account": SERVING_KSA,
        "serving_node_selector": dict(SERVING_NODE_SELECTOR),
        "vertex_endpoint": endpoint.display_name,
        "vertex_endpoint_id": endpoint.resource_name,
    }
    outputs.update({BUCKET_OUTPUTS[key]: uri for key, uri in storage.uris.items()})
    outputs.update({ACCOUNT_OUTPUTS[key]: email for key, email in identity.emails.items()})

    if settings.budget_requested:
        ProjectBudget("budget", settings, opts=after_apis)

    if settings.service_account_keys:
        keys = ServiceAccountKeys(
            "keys",
            identity.accounts,
            {account: settings.name(account) for account in KEYED_ACCOUNTS},
            provider=kfp.provider,
            namespace=kfp.namespace,
            # The namespace comes with the cluster-scoped install.
            depends_on=[kfp.cluster_scoped],
        )
        outputs["service_account_keys"] = pulumi.Output.secret(keys.json_keys)
    return outputs
