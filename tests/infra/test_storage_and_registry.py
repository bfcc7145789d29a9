"""Buckets and the Artifact Registry repository."""

from __future__ import annotations

from tests.infra import checks
from tests.infra.checks import BUCKET
from tests.infra.harness import GCP_PROJECT, dig

REPOSITORY = "gcp:artifactregistry/repository:Repository"


def test_every_bucket_has_uniform_access_public_prevention_and_labels(default_run):
    checks.check_buckets_locked_down(default_run)


def test_bucket_names_are_unique_to_the_project(default_run):
    names = sorted(b.inputs["name"] for b in default_run.of_type(BUCKET))
    assert names == sorted(
        f"{GCP_PROJECT}-crypto-kfp-{suffix}"
        for suffix in ("raw", "artifacts", "df-temp", "df-staging", "models", "build-src")
    )
    assert all(len(name) <= 63 for name in names)


def test_buckets_live_in_the_stack_region(default_run, custom_run):
    assert {b.inputs["location"] for b in default_run.of_type(BUCKET)} == {"US-CENTRAL1"}
    assert {b.inputs["location"] for b in custom_run.of_type(BUCKET)} == {"EUROPE-WEST4"}


def test_temp_and_staging_objects_expire_after_the_configured_days(default_run, custom_run):
    checks.check_scratch_expiry(default_run, 7)
    checks.check_scratch_expiry(custom_run, 3)


def test_data_buckets_keep_their_objects(default_run):
    for purpose in checks.DATA_BUCKETS:
        assert not checks.bucket(default_run, purpose).inputs.get("lifecycleRules"), purpose


def test_raw_bucket_is_versioned(default_run):
    checks.check_raw_versioned(default_run)


def test_registry_is_docker_in_the_region(default_run):
    repository = default_run.one(REPOSITORY)
    assert repository.inputs["format"] == "DOCKER"
    assert repository.inputs["location"] == "us-central1"
    assert repository.inputs["repositoryId"] == "crypto-kfp-images"


DAY = 24 * 3600


def _cleanup(run) -> dict[str, list[dict]]:
    repository = run.one(REPOSITORY)
    assert repository.inputs["cleanupPolicyDryRun"] is False
    policies: dict[str, list[dict]] = {}
    for policy in repository.inputs["cleanupPolicies"]:
        policies.setdefault(policy["action"], []).append(policy)
    return policies


def test_registry_cleanup_deletes_only_untagged_versions(default_run, custom_run):
    # Defect 6: a DELETE of any version older than a week removed digests that recurring
    # runs, GKE rollbacks and Vertex AI models still pin (every pushed image is tagged).
    for run, days in ((default_run, 7), (custom_run, 30)):
        deletes = _cleanup(run)["DELETE"]
        assert len(deletes) == 1, deletes
        condition = deletes[0]["condition"]
        # The API's default tag state is ANY: it must be spelled out.
        assert condition["tagState"] == "UNTAGGED"
        assert condition["olderThan"] == f"{days * DAY}s"
        assert not condition.get("tagPrefixes") and not condition.get("packageNamePrefixes")


def test_registry_cleanup_keeps_the_newest_versions_even_untagged(default_run, custom_run):
    for run, keep in ((default_run, 10), (custom_run, 4)):
        keeps = _cleanup(run)["KEEP"]
        assert [dig(k, "mostRecentVersions", "keepCount") for k in keeps] == [keep]


def test_no_cleanup_rule_can_delete_a_tagged_version(default_run, custom_run):
    for run in (default_run, custom_run):
        policies = _cleanup(run)
        assert set(policies) <= {"DELETE", "KEEP"}
        for policy in policies["DELETE"]:
            assert dig(policy, "condition", "tagState") == "UNTAGGED", policy


def test_dataflow_buckets_keep_no_soft_deleted_objects_and_data_buckets_do(default_run):
    for purpose in ("df-temp", "df-staging"):
        bucket = checks.bucket(default_run, purpose)
        policy = bucket.inputs.get("softDeletePolicy")
        assert policy == {"retentionDurationSeconds": 0}, f"{bucket.urn}: {policy}"
    for purpose in ("raw", "models", "artifacts"):
        bucket = checks.bucket(default_run, purpose)
        assert "softDeletePolicy" not in bucket.inputs, bucket.urn  # GCS's default is kept
