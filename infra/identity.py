"""Service accounts and who may do what, granted on the narrowest resource GCP allows.

Rules this module follows (and tests check):
- no primitive roles (owner/editor/viewer) anywhere;
- storage roles are granted on a bucket, never on the project;
- project-level roles only where GCP has no narrower resource to grant on;
- ``iam.serviceAccountUser`` only on the accounts the pipeline launches jobs as;
- Kubernetes workloads get Google credentials through Workload Identity, not keys;
- the serving account has no project-level role at all: it reads the models bucket, nothing
  else (GKE nodes pull its image as the node account, Vertex AI as its service agent);
- no account gets project-wide storage or Cloud Build permissions through any role: the
  pipeline launches Dataflow jobs with a custom role (``DATAFLOW_LAUNCHER``), not
  ``roles/dataflow.admin`` (which holds ``storage.objects.*`` on every bucket and
  ``cloudbuild.builds.create``, a way to act as the Cloud Build account);
- a write grant that only a prefix needs is conditioned on that prefix (``PREFIX_WRITES``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options
from infra.storage import VERTEX_STAGING_PREFIX

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
    "build": "Cloud Build image builds (make images BUILDER=cloudbuild): push to the repository",
}

# What launching and watching a Dataflow job needs, and nothing else: a project-level custom
# role, because Dataflow jobs and the Compute lookups are project-scoped. The launcher's
# files go to the temp and staging buckets through bucket grants (BUCKET_ROLES). Cancelling
# (the transform cancels its job on SIGTERM) is dataflow.jobs.cancel; updating a running
# streaming job (dataflow.jobs.updateContents) and snapshots are not needed for batch.
# Beam also reads the temp bucket's metadata to warn about soft delete; without
# storage.buckets.get that check logs a warning and the job goes on.
DATAFLOW_LAUNCHER = (
    "dataflow.jobs.create",
    "dataflow.jobs.get",
    "dataflow.jobs.list",
    "dataflow.jobs.cancel",
    "dataflow.messages.list",
    "dataflow.metrics.get",
    "compute.machineTypes.get",
    "compute.regions.list",
    "compute.zones.list",
)
# account -> custom roles (keys of CUSTOM_ROLES) granted on the project.
CUSTOM_ROLES = {"dataflow-launcher": DATAFLOW_LAUNCHER}
PROJECT_CUSTOM_ROLES = {"pipeline": ("dataflow-launcher",)}

# Project-level grants, each only because the permission has no narrower resource.
PROJECT_ROLES = {
    # GKE's least-privilege node role: log writing, metric writing, resource metadata. It
    # replaces the default compute service account, which has project Editor.
    "nodes": ("roles/container.defaultNodeServiceAccount",),
    # Vertex AI jobs and endpoints are project-scoped resources.
    "pipeline": ("roles/aiplatform.user",),
    # What Google requires of a Dataflow worker account.
    "dataflow": ("roles/dataflow.worker",),
    # A build that runs as a user-specified account writes its log to Cloud Logging
    # (cloudbuild.yaml: logging CLOUD_LOGGING_ONLY), which needs this.
    "build": ("roles/logging.logWriter",),
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
    # The Dataflow launcher stages the job's packages and writes temp files: on these two
    # buckets only, never project-wide.
    ("pipeline", "dataflow_temp"): (ADMIN,),
    ("pipeline", "dataflow_staging"): (ADMIN,),
    ("pipeline", "models"): (ADMIN,),
    ("dataflow", "raw"): (VIEW,),
    ("dataflow", "artifacts"): (ADMIN,),
    ("dataflow", "dataflow_temp"): (ADMIN,),
    ("dataflow", "dataflow_staging"): (VIEW,),
    # Tuning trials read the features and stats anywhere under the pipeline root; they write
    # only under the vertex-staging/ prefix (PREFIX_WRITES).
    ("vertex", "artifacts"): (VIEW,),
    # The model server loads the CURRENT version from the model repository and nothing else:
    # read-only, on the models bucket only. (Vertex AI's service agent, not this account,
    # copies a model's artifacts to the serving container's AIP_STORAGE_URI.)
    ("serving", "models"): (VIEW,),
    ("kfp-ui", "artifacts"): (VIEW,),
    # Cloud Build fetches the uploaded source as the build account.
    ("build", "build_source"): (VIEW,),
}

# (account, bucket key) -> (role, object prefix): a grant on the bucket with an IAM condition
# that limits it to the objects under the prefix. Vertex AI stages each custom job (the
# tuning trials) and the trials write their error files under vertex-staging/, the job's
# staging bucket; nothing else in the pipeline root is theirs to change.
PREFIX_WRITES = {("vertex", "artifacts"): (ADMIN, VERTEX_STAGING_PREFIX)}

# account -> roles on the one Docker repository. Nodes pull step images and the model
# server's (serving pods on GKE pull as the node account, not as their Workload Identity);
# Dataflow workers run the transform step's image as their SDK container. The vertex and
# serving accounts need none: Vertex AI pulls custom-job and model images with its own
# service agent (VERTEX_AGENT_REPOSITORY_ROLE). The build account pushes.
REPOSITORY_ROLES = {
    "nodes": ("roles/artifactregistry.reader",),
    "dataflow": ("roles/artifactregistry.reader",),
    "build": ("roles/artifactregistry.writer",),
}
# Vertex AI's service agent (service-<project number>@gcp-sa-aiplatform...) pulls the tune
# image for the trials and the deploy image for endpoint models. Within the project its
# default role already allows it; the grant on the repository says so explicitly and keeps
# working if that default is narrowed.
VERTEX_API = "aiplatform.googleapis.com"
VERTEX_AGENT_REPOSITORY_ROLE = "roles/artifactregistry.reader"

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


def custom_role_id(settings: Settings, key: str) -> str:
    """A custom role's id: letters, digits, underscores and dots only (no hyphens)."""
    return f"{settings.resource_prefix}_{key}".replace("-", "_")


def prefix_condition(bucket: str, prefix: str) -> str:
    """The IAM condition that limits a bucket grant to the objects under ``prefix``."""
    return f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}/")'


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

        # `pulumi destroy` deletes a custom role softly (GCP keeps its id for a while); the
        # provider undeletes it when a later `pulumi up` creates the same id again.
        self.custom_roles = {
            key: gcp.projects.IAMCustomRole(
                f"{name}-{key}",
                project=settings.project,
                role_id=custom_role_id(settings, key),
                title=f"{settings.resource_prefix} {key}",
                description="Launch and watch Dataflow jobs; no storage or Cloud Build access",
                permissions=list(permissions),
                stage="GA",
                opts=child,
            )
            for key, permissions in CUSTOM_ROLES.items()
        }
        for account, keys in PROJECT_CUSTOM_ROLES.items():
            for key in keys:
                gcp.projects.IAMMember(
                    f"{name}-{account}-{key}",
                    project=settings.project,
                    role=self.custom_roles[key].name,
                    member=self.member(account),
                    opts=child,
                )
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
        for (account, bucket), (role, prefix) in PREFIX_WRITES.items():
            gcp.storage.BucketIAMMember(
                f"{name}-{account}-{_short(role)}-{bucket}-{prefix}",
                bucket=buckets[bucket].name,
                role=role,
                member=self.member(account),
                condition=gcp.storage.BucketIAMMemberConditionArgs(
                    title=f"{prefix}/ only",
                    description=f"Objects under {prefix}/ in this bucket, nothing else",
                    expression=buckets[bucket].name.apply(
                        lambda bucket_name, p=prefix: prefix_condition(bucket_name, p)
                    ),
                ),
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
        # Generating the identity makes sure the agent exists before it is granted anything
        # (it may not yet, right after the API is enabled).
        self.vertex_agent = gcp.projects.ServiceIdentity(
            f"{name}-vertex-agent", project=settings.project, service=VERTEX_API, opts=child
        )
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-vertex-agent-{_short(VERTEX_AGENT_REPOSITORY_ROLE)}",
            project=settings.project,
            location=repository.location,
            repository=repository.name,
            role=VERTEX_AGENT_REPOSITORY_ROLE,
            member=self.vertex_agent.member,
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
