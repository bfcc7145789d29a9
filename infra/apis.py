"""The Google APIs the stack and the pipeline call."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

REQUIRED_APIS = (
    "compute.googleapis.com",  # VPC, NAT, node VMs
    "container.googleapis.com",  # GKE
    "artifactregistry.googleapis.com",  # step images
    "storage.googleapis.com",  # buckets
    "dataflow.googleapis.com",  # the cloud transform runner
    "aiplatform.googleapis.com",  # Vertex AI tuning and serving
    "iam.googleapis.com",  # service accounts
    "iamcredentials.googleapis.com",  # Workload Identity token exchange
    "cloudbuild.googleapis.com",  # image builds without a local Docker daemon
    "cloudresourcemanager.googleapis.com",  # project IAM bindings
    "logging.googleapis.com",  # node and job logs
    "monitoring.googleapis.com",  # node metrics
)


class ProjectApis(pulumi.ComponentResource):
    """Enables the required APIs. Depend on this component to wait for all of them."""

    def __init__(self, name: str, project: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("crypto-kfp:infra:ProjectApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                api.split(".")[0],
                project=project,
                service=api,
                # Never disable on destroy: other workloads in the project may use the same
                # API, and disabling one can cascade to resources this stack does not own.
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in REQUIRED_APIS
        ]
        self.register_outputs({"services": [s.service for s in self.services]})
