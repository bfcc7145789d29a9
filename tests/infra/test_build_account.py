"""Cloud Build runs as the stack's own build account, which may push to the repository only.

Issue 21, defect 10: nothing granted the build's account artifactregistry.writer, and newer
projects build as the Compute default account. The stack now creates a build account with
writer on the one repository, Cloud Logging for its log, read access to the bucket its
source is uploaded to, and nothing else; cloudbuild.yaml and `make images
BUILDER=cloudbuild` run the build as it.
"""

from __future__ import annotations

import os
import subprocess

import pulumi
import yaml

from tests.infra import checks
from tests.infra.checks import BUCKET, PROJECT_IAM, REPOSITORY_IAM
from tests.infra.harness import GCP_PROJECT, PROJECT_ROOT, dig

REPOSITORY = "gcp:artifactregistry/repository:Repository"
BUILD_EMAIL = f"crypto-kfp-build@{GCP_PROJECT}.iam.gserviceaccount.com"
BUILD_MEMBER = f"serviceAccount:{BUILD_EMAIL}"
CLOUDBUILD = yaml.safe_load((PROJECT_ROOT / "cloudbuild.yaml").read_text())


def _grants(run, member: str) -> set[tuple[str, str, str]]:
    """(resource type, where, role) of every grant to ``member``."""
    names = {b.inputs["name"]: dig(b.inputs, "labels", "purpose") for b in run.of_type(BUCKET)}
    held = set()
    for r in run.resources:
        if r.type.startswith("gcp:") and r.inputs.get("member") == member:
            where = names.get(r.inputs.get("bucket"))
            if r.type == REPOSITORY_IAM:
                where = r.inputs["repository"]
            elif r.type == PROJECT_IAM:
                where = r.inputs["project"]
            held.add((r.type, where, r.inputs["role"]))
    return held


def test_the_build_account_pushes_to_the_repository_and_does_nothing_else(default_run):
    assert checks.account_email(default_run, "build") == BUILD_EMAIL
    repository = default_run.one(REPOSITORY).inputs["repositoryId"]
    assert _grants(default_run, BUILD_MEMBER) == {
        (REPOSITORY_IAM, repository, "roles/artifactregistry.writer"),
        # A build with a user-specified account logs to Cloud Logging only.
        (PROJECT_IAM, GCP_PROJECT, "roles/logging.logWriter"),
        # Cloud Build fetches the uploaded source as the build's account.
        (checks.BUCKET_IAM, "build-src", "roles/storage.objectViewer"),
    }


def test_no_registry_role_is_granted_on_the_whole_project(default_run):
    project_roles = {r.inputs["role"] for r in default_run.of_type(PROJECT_IAM)}
    assert not {r for r in project_roles if r.startswith("roles/artifactregistry.")}
    writers = [
        r
        for r in default_run.of_type(REPOSITORY_IAM)
        if r.inputs["role"] in ("roles/artifactregistry.writer", "roles/artifactregistry.admin")
    ]
    assert [w.inputs["member"] for w in writers] == [BUILD_MEMBER]


def test_the_build_source_bucket_is_scratch(default_run):
    source = checks.bucket(default_run, "build-src")
    assert source.inputs["name"] == f"{GCP_PROJECT}-crypto-kfp-build-src"
    assert source.inputs["forceDestroy"] is True
    assert dig(source.inputs, "softDeletePolicy", "retentionDurationSeconds") == 0


@pulumi.runtime.test
def test_the_build_account_and_source_bucket_are_stack_outputs(default_run):
    def check(values):
        account, bucket = values
        assert account == BUILD_EMAIL
        assert bucket == f"gs://{GCP_PROJECT}-crypto-kfp-build-src"

    return pulumi.Output.all(
        default_run.outputs["build_service_account"], default_run.outputs["build_source_bucket"]
    ).apply(check)


def test_cloudbuild_runs_as_the_account_named_by_a_substitution():
    assert CLOUDBUILD["serviceAccount"] == (
        "projects/$PROJECT_ID/serviceAccounts/${_BUILD_SERVICE_ACCOUNT}"
    )
    # No default: without the account the build is refused, never run as a default one.
    assert "_BUILD_SERVICE_ACCOUNT" not in CLOUDBUILD["substitutions"]
    # A user-specified account cannot write the default logs bucket.
    assert CLOUDBUILD["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert "logsBucket" not in CLOUDBUILD


def test_make_images_hands_the_build_account_and_source_bucket_to_the_build(tmp_path):
    # Stand-ins for the Pulumi and gcloud CLIs: pulumi prints the outputs `make` asks for,
    # gcloud records what the build script hands it and stops the build there.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "gcloud.txt"
    (bin_dir / "pulumi").write_text(
        "#!/bin/sh\n"
        'case "$3" in\n'
        f"  build_service_account) echo {BUILD_EMAIL} ;;\n"
        f"  build_source_bucket) echo gs://{GCP_PROJECT}-crypto-kfp-build-src ;;\n"
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    (bin_dir / "gcloud").write_text(
        f'#!/bin/sh\nenv | grep "^BUILD_" | sort > {record}\necho "$@" >> {record}\nexit 3\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(tmp_path / "images.json"),
    }
    out = subprocess.run(
        ["make", "--no-print-directory", "images", "BUILDER=cloudbuild", "REGISTRY=r.example/x"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0, out.stdout  # the stand-in gcloud stops the build
    seen = record.read_text().splitlines()
    assert f"BUILD_SERVICE_ACCOUNT={BUILD_EMAIL}" in seen, seen
    assert f"BUILD_SOURCE_BUCKET=gs://{GCP_PROJECT}-crypto-kfp-build-src" in seen, seen
    assert any(line.startswith("builds submit --config cloudbuild.yaml") for line in seen), seen
    submit = next(line for line in seen if line.startswith("builds submit"))
    assert f"--gcs-source-staging-dir gs://{GCP_PROJECT}-crypto-kfp-build-src/source" in submit
    assert f"_BUILD_SERVICE_ACCOUNT={BUILD_EMAIL}" in submit
    assert not (tmp_path / "images.json").exists()
