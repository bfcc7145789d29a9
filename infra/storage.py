"""GCS buckets: raw data lake, pipeline root, Dataflow temp and staging, models, and the
Cloud Build source uploads."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.options import child_options


@dataclass(frozen=True)
class BucketSpec:
    suffix: str
    purpose: str
    versioned: bool = False
    # Scratch buckets expire their objects; data buckets keep them.
    expires: bool = False
    # Data buckets are Pulumi-protected and survive `pulumi destroy` when the stack is protected.
    holds_data: bool = True
    # Scratch buckets keep no soft-deleted copies: Dataflow writes and deletes many temp
    # files per job, each would be billed for GCS's default 7 days (Beam warns about it).
    soft_delete: bool = True


BUCKETS = {
    # Versioned: an accidental overwrite or delete of raw data can be undone.
    "raw": BucketSpec("raw", "raw data lake", versioned=True),
    "artifacts": BucketSpec("artifacts", "KFP pipeline root: every step's artifacts"),
    "dataflow_temp": BucketSpec(
        "df-temp", "Dataflow temporary files", expires=True, holds_data=False, soft_delete=False
    ),
    "dataflow_staging": BucketSpec(
        "df-staging", "Dataflow staged packages", expires=True, holds_data=False, soft_delete=False
    ),
    "models": BucketSpec("models", "trained models for serving", versioned=True),
    # `make images BUILDER=cloudbuild` uploads its source here (gcloud builds submit
    # --gcs-source-staging-dir) and the build account reads it back: the build runs as the
    # stack's own account, which cannot read gcloud's default <project>_cloudbuild bucket.
    "build_source": BucketSpec(
        "build-src", "Cloud Build source uploads", expires=True, holds_data=False, soft_delete=False
    ),
}

PIPELINE_ROOT_PREFIX = "pipeline-root"
# Where Vertex AI stages each custom job (the tuning trials) in the artifacts bucket: the
# only place the vertex account may write (identity.PREFIX_WRITES).
VERTEX_STAGING_PREFIX = "vertex-staging"


class Buckets(pulumi.ComponentResource):
    """One bucket per purpose, so each service account is granted only the ones it uses."""

    def __init__(
        self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("crypto-kfp:infra:Buckets", name, None, opts)
        self.buckets: dict[str, gcp.storage.Bucket] = {}
        for key, spec in BUCKETS.items():
            keep_data = settings.protect and spec.holds_data
            self.buckets[key] = gcp.storage.Bucket(
                f"{name}-{spec.suffix}",
                name=settings.bucket_name(spec.suffix),
                # Same region as the cluster and Dataflow: no cross-region egress charges.
                location=settings.region.upper(),
                storage_class="STANDARD",
                # IAM only, no per-object ACLs: access is what the bucket policy says.
                uniform_bucket_level_access=True,
                # No bucket may ever be made public, whatever IAM binding is added later.
                public_access_prevention="enforced",
                versioning=gcp.storage.BucketVersioningArgs(enabled=spec.versioned),
                lifecycle_rules=_expiry_rules(settings.temp_object_ttl_days)
                if spec.expires
                else None,
                soft_delete_policy=None
                if spec.soft_delete
                else gcp.storage.BucketSoftDeletePolicyArgs(retention_duration_seconds=0),
                labels={**settings.labels, "purpose": spec.suffix},
                # A disposable stack must be destroyable with objects inside; a protected
                # stack refuses to delete a data bucket that still holds objects.
                force_destroy=not keep_data,
                # Pulumi refuses to delete a protected bucket at all; retain on delete keeps
                # it in GCP should the protection be lifted in state alone (state unprotect).
                opts=child_options(self, opts, protect=keep_data, retain_on_delete=keep_data),
            )
        self.uris = {
            key: bucket.name.apply(lambda n: f"gs://{n}") for key, bucket in self.buckets.items()
        }
        self.pipeline_root = self.buckets["artifacts"].name.apply(
            lambda n: f"gs://{n}/{PIPELINE_ROOT_PREFIX}"
        )
        self.register_outputs({"uris": self.uris, "pipeline_root": self.pipeline_root})


def _expiry_rules(days: int) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """Delete objects older than ``days``: temp and staging files are never read again."""
    return [
        gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=days),
        )
    ]
