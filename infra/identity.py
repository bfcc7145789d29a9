"""Service accounts and who may do what, granted on the narrowest resource GCP allows.

Rules this module follows (and tests check):
- no primitive roles (owner/editor/viewer) anywhere;
- storage roles are granted on a bucket, never on the project;
- project-level roles only where GCP has no narrower resource to grant on;
- ``iam.serviceAccountUser`` only on the accounts the pipeline launches jobs as;
- Kubernetes workloads get Google credentials through Workload Identity, not keys;
- the serving account has no project-level role at all: it reads the models bucket and
  pulls from the repository, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options

KFP_NAMESPACE = "kubeflow"
# Where the model server runs on GKE, and the Kubernetes service account it runs as.
SERVING_NAMESPACE = "serving"
SERVING_KSA = "model-server"

# account -> what it is for
ACCOUNTS = {
    "nodes": "GKE nodes: write logs and metrics, pull step images",
    "pipeline": "KFP pipeline steps (KSA kubeflow/pipeline-runner)",
    "dataflow": "Dataflow workers of the transform step",
    "vertex": "Vertex AI tuning trials",
    "serving": "Model server on GKE (KSA serving/model-server) and Vertex AI endpoints",
    "kfp-ui": "KFP UI showing artifacts stored in GCS (KSA kubeflow/ml-pipeline-ui)",
}

# Project-level grants, each only because the permission has no narrower resource.
PROJECT_ROLES = {
    # GKE's least-privilege node role: log writing, metric writing, resource metadata. It
    # replaces the default compute service account, which has project Editor.
    "nodes": ("roles/container.defaultNodeServiceAccount",),
    # Dataflow jobs and Vertex AI jobs/endpoints are project-scoped resources. Creating a
    # Dataflow job also checks machine types, regions, zones and the buckets
    # (compute.machineTypes.get, compute.regions.list, compute.zones.list,
    # storage.buckets.get): dataflow.developer lacks them, dataflow.admin has them.
    "pipeline": ("roles/dataflow.admin", "roles/aiplatform.user"),
    "dataflow": ("roles/dataflow.worker",),
}

VIEW = "roles/storage.objectViewer"
CREATE = "roles/storage.objectCreator"
ADMIN = "roles/storage.objectAdmin"
# (account, bucket key) -> roles on that bucket only.
BUCKET_ROLES = {
    # Ingest adds raw objects but cannot overwrite or delete them (no objectAdmin):
    # raw data is never lost, whatever a step does.
    ("pipeline", "raw"): (VIEW, CREATE),
    ("pipeline", "artifacts"): (ADMIN,),
    ("pipeline", "dataflow_temp"): (ADMIN,),
    ("pipeline", "dataflow_staging"): (ADMIN,),
    ("pipeline", "models"): (ADMIN,),
    ("dataflow", "raw"): (VIEW,),
    ("dataflow", "artifacts"): (ADMIN,),
    ("dataflow", "dataflow_temp"): (ADMIN,),
    ("dataflow", "dataflow_staging"): (VIEW,),
    # Tuning trials read the features from the pipeline root and Vertex stages each custom
    # job's files under the pipeline root's vertex-staging/ prefix (the job's staging bucket).
    ("vertex", "artifacts"): (ADMIN,),
    # The model server loads the CURRENT version from the model repository and nothing else:
    # read-only, on the models bucket only. (Vertex AI's service agent, not this account,
    # copies a model's artifacts to the serving container's AIP_STORAGE_URI.)
    ("serving", "models"): (VIEW,),
    ("kfp-ui", "artifacts"): (VIEW,),
}

# account -> roles on the one Docker repository. Nodes pull step images; Dataflow
# workers run the transform step's image as their SDK container.
REPOSITORY_ROLES = {
    "nodes": ("roles/artifactregistry.reader",),
    "dataflow": ("roles/artifactregistry.reader",),
    # Vertex custom jobs (tuning trials) run the tune image from this repository.
    "vertex": ("roles/artifactregistry.reader",),
    # Read access to the serving image only. GKE nodes pull it as the node account and
    # Vertex AI always pulls as its own service agent (a deployed model's service account
    # is never used for the pull); this covers what runs as the serving identity itself.
    "serving": ("roles/artifactregistry.reader",),
}

# The pipeline launches Dataflow jobs and Vertex AI jobs *as* these accounts, which needs
# iam.serviceAccountUser on each of them (and on nothing else). The deploy step deploys a
# Vertex AI model with ``deployed_model.service_account`` set to the serving account.
ACTS_AS = {"pipeline": ("dataflow", "vertex", "serving")}

# account -> Kubernetes service account in the KFP namespace that impersonates it (the
# install creates them; kubeflow.py annotates them).
WORKLOAD_IDENTITY = {"pipeline": "pipeline-runner", "kfp-ui": "ml-pipeline-ui"}
# account -> (namespace, Kubernetes service account) of every Workload Identity binding:
# KFP's accounts above, and the model server's (serving.py creates its namespace and KSA).
WORKLOAD_IDENTITY_MEMBERS = {
    **{account: (KFP_NAMESPACE, ksa) for account, ksa in WORKLOAD_IDENTITY.items()},
    "serving": (SERVING_NAMESPACE, SERVING_KSA),
}


def workload_identity_member(project: str, namespace: str, ksa: str) -> str:
    """The IAM member a Kubernetes service account is known as in the project's pool."""
    return f"serviceAccount:{project}.svc.id.goog[{namespace}/{ksa}]"


def _short(role: str) -> str:
    return role.removeprefix("roles/").replace(".", "-")


class ServiceAccounts(pulumi.ComponentResource):
    """Creates the accounts and grants their roles on the given buckets and repository."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        buckets: Mapping[str, gcp.storage.Bucket],
        repository: gcp.artifactregistry.Repository,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crypto-kfp:infra:ServiceAccounts", name, None, opts)
        child = child_options(self, opts)
        self.accounts = {
            key: gcp.serviceaccount.Account(
                f"{name}-{key}",
                account_id=settings.name(key),
                display_name=f"{settings.resource_prefix} {key}",
                description=purpose,
                project=settings.project,
                opts=child,
            )
            for key, purpose in ACCOUNTS.items()
        }
        self.emails = {key: account.email for key, account in self.accounts.items()}

        for account, roles in PROJECT_ROLES.items():
            for role in roles:
                gcp.projects.IAMMember(
                    f"{name}-{account}-{_short(role)}",
                    project=settings.project,
                    role=role,
                    member=self.member(account),
                    opts=child,
                )
        for (account, bucket), roles in BUCKET_ROLES.items():
            for role in roles:
                gcp.storage.BucketIAMMember(
                    f"{name}-{account}-{_short(role)}-{bucket}",
                    bucket=buckets[bucket].name,
                    role=role,
                    member=self.member(account),
                    opts=child,
                )
        for account, roles in REPOSITORY_ROLES.items():
            for role in roles:
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-{account}-{_short(role)}",
                    project=settings.project,
                    location=repository.location,
                    repository=repository.name,
                    role=role,
                    member=self.member(account),
                    opts=child,
                )
        for account, targets in ACTS_AS.items():
            for target in targets:
                gcp.serviceaccount.IAMMember(
                    f"{name}-{account}-acts-as-{target}",
                    service_account_id=self.accounts[target].name,
                    role="roles/iam.serviceAccountUser",
                    member=self.member(account),
                    opts=child,
                )
        self.register_outputs({"emails": self.emails})

    def member(self, account: str) -> pulumi.Output[str]:
        """The IAM member string of one of the accounts."""
        return self.accounts[account].email.apply(lambda email: f"serviceAccount:{email}")


class WorkloadIdentityBindings(pulumi.ComponentResource):
    """Lets the Kubernetes service accounts act as their Google service accounts.

    Created after the cluster: the ``<project>.svc.id.goog`` identity pool only exists once
    a cluster with Workload Identity does, and binding to it earlier fails.
    """

    def __init__(
        self,
        name: str,
        settings: Settings,
        accounts: ServiceAccounts,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("crypto-kfp:infra:WorkloadIdentityBindings", name, None, opts)
        self.members = {}
        for account, (namespace, ksa) in WORKLOAD_IDENTITY_MEMBERS.items():
            member = workload_identity_member(settings.project, namespace, ksa)
            gcp.serviceaccount.IAMMember(
                f"{name}-{account}-{ksa}",
                service_account_id=accounts.accounts[account].name,
                role="roles/iam.workloadIdentityUser",
                member=member,
                opts=child_options(self, opts),
            )
            self.members[account] = member
        self.register_outputs({"members": self.members})
