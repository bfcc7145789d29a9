"""Kubeflow Pipelines standalone on the cluster, pointed at GCS and Workload Identity."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.config import Settings
from infra.identity import KFP_NAMESPACE, WORKLOAD_IDENTITY

MANIFESTS = "github.com/kubeflow/pipelines/manifests/kustomize"
# Cluster-wide pieces first (namespace, CRDs, cluster roles), then the namespaced install.
# env/platform-agnostic is the release install; env/dev would pin images to `master`.
CLUSTER_SCOPED = "cluster-scoped-resources"
PLATFORM = "env/platform-agnostic"
# Lets a patch take ownership of a field the kustomize install also set.
PATCH_FORCE = {"pulumi.com/patchForce": "true"}
WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"


def manifest_url(path: str, version: str) -> str:
    """A kustomize remote target pinned to a KFP release tag."""
    return f"{MANIFESTS}/{path}?ref={version}"


class KubeflowPipelines(pulumi.ComponentResource):
    """Installs KFP from its release manifests, then annotates its service accounts."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        kubeconfig: pulumi.Input[str],
        pipeline_root: pulumi.Input[str],
        service_account_emails: dict[str, pulumi.Input[str]],
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crypto-kfp:infra:KubeflowPipelines", name, None, opts)
        self.namespace = KFP_NAMESPACE
        self.provider = k8s.Provider(
            f"{name}-gke",
            kubeconfig=kubeconfig,
            # Patch resources below need server-side apply.
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)

        self.cluster_scoped = k8s.kustomize.v2.Directory(
            f"{name}-cluster-scoped",
            directory=manifest_url(CLUSTER_SCOPED, settings.kfp_version),
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(depends_on=list(depends_on))
            ),
        )
        # The namespaced install uses the CRDs and namespace created above.
        self.platform = k8s.kustomize.v2.Directory(
            f"{name}-platform",
            directory=manifest_url(PLATFORM, settings.kfp_version),
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(depends_on=[self.cluster_scoped, *depends_on])
            ),
        )
        after_install = pulumi.ResourceOptions.merge(
            on_cluster, pulumi.ResourceOptions(depends_on=[self.platform])
        )
        # Carrying the version makes a KFP upgrade re-apply the patches after the
        # re-applied install has reset the fields to the manifests' values.
        version_annotation = {"crypto-kfp/kfp-version": settings.kfp_version}

        # The pipeline root has one owner: the run. `python -m pipeline submit` passes the
        # stack's pipeline_root with every run, so no ConfigMap is patched here. A
        # ConfigMapPatch of kfp-launcher's defaultPipelineRoot would share that field with
        # the Directory above (which renders it), and server-side apply would then fail with
        # a field conflict on the next upgrade or refresh. (In 2.17 only the root DAG driver
        # reads the key, from kfp-launcher; pipeline-install-config's copy is never read.)
        # Runs started without a root (e.g. from the UI) use the manifests' default.
        # Step pods (pipeline-runner) and the UI (ml-pipeline-ui) reach GCS as their Google
        # service accounts through Workload Identity: no key file anywhere.
        self.service_account_patches = [
            k8s.core.v1.ServiceAccountPatch(
                f"{name}-{ksa}-workload-identity",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=ksa,
                    namespace=KFP_NAMESPACE,
                    annotations={
                        **PATCH_FORCE,
                        **version_annotation,
                        WORKLOAD_IDENTITY_ANNOTATION: service_account_emails[account],
                    },
                ),
                opts=after_install,
            )
            for account, ksa in WORKLOAD_IDENTITY.items()
        ]
        self.register_outputs({"namespace": self.namespace})
