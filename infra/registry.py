"""Artifact Registry Docker repository for the pipeline step images."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options

# A freshly pushed image is never deleted before a pipeline had the chance to use it.
DELETE_OLDER_THAN = f"{7 * 24 * 3600}s"


class ContainerRegistry(pulumi.ComponentResource):
    """One Docker repository; ``url`` is the prefix image names are tagged with."""

    def __init__(
        self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crypto-kfp:infra:ContainerRegistry", name, None, opts)
        repository_id = settings.name("images")
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-docker",
            repository_id=repository_id,
            location=settings.region,
            format="DOCKER",
            description="Pipeline step images",
            labels=settings.labels,
            # Every `make pipeline` pushes new images; without clean-up storage grows forever.
            # Delete versions older than a week except the newest N of each image: a KEEP
            # policy wins over a DELETE policy for the versions it matches.
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="ANY", older_than=DELETE_OLDER_THAN
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-newest",
                    action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=settings.registry_keep_versions
                    ),
                ),
            ],
            opts=child_options(self, opts),
        )
        self.url = self.repository.repository_id.apply(
            lambda repo: f"{settings.region}-docker.pkg.dev/{settings.project}/{repo}"
        )
        self.register_outputs({"url": self.url})
