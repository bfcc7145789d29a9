"""Artifact Registry Docker repository for the pipeline step images."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options

# Cleanup never deletes a digest something may still run. components/build_images.sh (and
# cloudbuild.yaml) tag every pushed image with its commit, and a compiled pipeline, a
# recurring run (make schedule), a GKE Deployment's rollout history or a Vertex AI model
# pin those same, tagged, digests. So only UNTAGGED versions are deleted: digests no tag
# points to any more (a tag moved by a rebuild of the same commit, e.g. a -dirty one).
# Tagged versions are kept whatever their age; to free their space, delete the tags of
# commits nothing schedules or serves (gcloud artifacts docker tags delete), and the
# versions go registryUntaggedDays later. On top of that the newest registryKeepVersions
# versions of each image are kept even untagged: a KEEP policy wins over a DELETE one.
# Builds push single-platform images: an image index would leave its per-platform
# manifests untagged, and this policy would delete them under a tagged index.
CLEANUP_DELETE = "delete-untagged"
CLEANUP_KEEP = "keep-newest"


def _days(days: int) -> str:
    return f"{days * 24 * 3600}s"


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
            # Every `make pipeline` pushes new images; without clean-up untagged versions
            # would pile up forever. The rules and why they are safe: see above.
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id=CLEANUP_DELETE,
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED",
                        older_than=_days(settings.registry_untagged_days),
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id=CLEANUP_KEEP,
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
