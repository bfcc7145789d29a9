"""Service accounts and IAM: least privilege, on the narrowest resource."""

from __future__ import annotations

import pulumi

from tests.infra import checks
from tests.infra.checks import (
    ACCOUNT,
    ACCOUNT_IAM,
    BUCKET_IAM,
    CLUSTER,
    PROJECT_IAM,
    REPOSITORY_IAM,
)
from tests.infra.harness import CUSTOM_ROLE, GCP_PROJECT, GCP_PROJECT_NUMBER, SERVICE_IDENTITY

DATAFLOW_LAUNCHER_ROLE = f"projects/{GCP_PROJECT}/roles/crypto_kfp_dataflow_launcher"
# Project-level roles the design allows, each because no narrower resource exists.
ALLOWED_PROJECT_ROLES = {
    "roles/container.defaultNodeServiceAccount",
    "roles/dataflow.worker",
    "roles/aiplatform.user",
    "roles/logging.logWriter",
    DATAFLOW_LAUNCHER_ROLE,
}
# What launching and watching a Dataflow job needs (issue 21, defect 4), and nothing more.
DATAFLOW_LAUNCHER_PERMISSIONS = {
    "dataflow.jobs.create",
    "dataflow.jobs.get",
    "dataflow.jobs.list",
    "dataflow.jobs.cancel",
    "dataflow.messages.list",
    "dataflow.metrics.get",
    "compute.machineTypes.get",
    "compute.regions.list",
    "compute.zones.list",
}
# Predefined roles holding storage.* or cloudbuild.* on every bucket / the whole project.
BROAD_ROLES = {"roles/dataflow.admin", "roles/editor", "roles/owner"}
VERTEX_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-aiplatform.iam.gserviceaccount.com"
)


def _member(run, account: str) -> str:
    return f"serviceAccount:{checks.account_email(run, account)}"


def _project_roles(run, account: str) -> set[str]:
    member = _member(run, account)
    return {r.inputs["role"] for r in run.of_type(PROJECT_IAM) if r.inputs["member"] == member}


def test_service_accounts_exist_for_each_workload(default_run):
    ids = {a.inputs["accountId"] for a in default_run.of_type(ACCOUNT)}
    assert ids == {
        f"crypto-kfp-{k}"
        for k in ("nodes", "pipeline", "dataflow", "vertex", "kfp-ui", "serving", "build")
    }
    assert all(6 <= len(i) <= 30 for i in ids)


def test_no_primitive_roles_anywhere(default_run):
    checks.check_no_primitive_roles(default_run)


def test_storage_roles_are_bound_on_buckets_not_the_project(default_run):
    checks.check_storage_roles_on_buckets(default_run)
    assert default_run.of_type(BUCKET_IAM)


def test_project_roles_only_where_nothing_narrower_exists(default_run):
    roles = {r.inputs["role"] for r in default_run.of_type(PROJECT_IAM)}
    assert roles <= ALLOWED_PROJECT_ROLES, roles - ALLOWED_PROJECT_ROLES


def _bucket_roles(run, account):
    member = f"serviceAccount:{checks.account_email(run, account)}"
    names = {
        checks.bucket(run, p).inputs["name"]: p
        for p in ("raw", "artifacts", "df-temp", "df-staging", "models", "build-src")
    }
    return {
        (names[r.inputs["bucket"]], r.inputs["role"])
        for r in run.of_type(BUCKET_IAM)
        if r.inputs["member"] == member
    }


def test_pipeline_can_add_raw_data_but_never_overwrite_or_delete_it(default_run):
    raw_roles = {
        role for purpose, role in _bucket_roles(default_run, "pipeline") if purpose == "raw"
    }
    assert raw_roles == {"roles/storage.objectViewer", "roles/storage.objectCreator"}


def test_kfp_ui_only_reads_the_artifacts_bucket(default_run):
    assert _bucket_roles(default_run, "kfp-ui") == {("artifacts", "roles/storage.objectViewer")}


def test_service_account_user_only_on_the_accounts_the_pipeline_launches_jobs_as(default_run):
    pipeline = f"serviceAccount:{checks.account_email(default_run, 'pipeline')}"
    grants = [
        r for r in default_run.resources if r.inputs.get("role") == "roles/iam.serviceAccountUser"
    ]
    assert grants and all(r.type == ACCOUNT_IAM for r in grants)
    assert all(r.inputs["member"] == pipeline for r in grants)
    targets = {r.inputs["serviceAccountId"] for r in grants}
    assert targets == {
        f"projects/{GCP_PROJECT}/serviceAccounts/{checks.account_email(default_run, k)}"
        for k in ("dataflow", "vertex", "serving")
    }


def test_pipeline_runner_is_bound_to_the_pipeline_service_account(default_run):
    checks.check_pipeline_runner_binding(default_run)


def test_ml_pipeline_ui_is_bound_to_the_ui_service_account(default_run):
    member = f"serviceAccount:{GCP_PROJECT}.svc.id.goog[kubeflow/ml-pipeline-ui]"
    binding = next(r for r in default_run.of_type(ACCOUNT_IAM) if r.inputs["member"] == member)
    assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert binding.inputs["serviceAccountId"].endswith(
        f"/{checks.account_email(default_run, 'kfp-ui')}"
    )


def test_workload_identity_bindings_wait_for_the_cluster(default_run):
    # The <project>.svc.id.goog pool only exists once the cluster does.
    cluster = default_run.one(CLUSTER)
    bindings = [
        r
        for r in default_run.of_type(ACCOUNT_IAM)
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
    ]
    assert len(bindings) == 3
    for binding in bindings:
        assert cluster.urn in binding.dependencies, binding.urn


def test_pipeline_launches_dataflow_with_a_custom_role_not_dataflow_admin(default_run):
    # Defect 4: roles/dataflow.admin gave the pipeline storage.objects.* on every bucket
    # and cloudbuild.builds.create.
    assert _project_roles(default_run, "pipeline") == {
        "roles/aiplatform.user",
        DATAFLOW_LAUNCHER_ROLE,
    }
    role = default_run.one(CUSTOM_ROLE)
    assert role.inputs["roleId"] == "crypto_kfp_dataflow_launcher"
    assert role.inputs["project"] == GCP_PROJECT
    assert set(role.inputs["permissions"]) == DATAFLOW_LAUNCHER_PERMISSIONS
    assert len(role.inputs["permissions"]) == len(DATAFLOW_LAUNCHER_PERMISSIONS)
    # The grant waits for the role: it names the role the program created.
    grant = next(
        r for r in default_run.of_type(PROJECT_IAM) if r.inputs["role"] == DATAFLOW_LAUNCHER_ROLE
    )
    assert role.urn in grant.dependencies


def test_a_custom_role_id_is_valid_for_any_prefix(custom_run):
    # Role ids allow letters, digits, underscores and dots: the prefix's hyphens go.
    assert custom_run.one(CUSTOM_ROLE).inputs["roleId"] == "kfp_test_dataflow_launcher"


def test_pipeline_writes_dataflow_files_on_the_temp_and_staging_buckets(default_run):
    roles = _bucket_roles(default_run, "pipeline")
    assert ("df-temp", "roles/storage.objectAdmin") in roles
    assert ("df-staging", "roles/storage.objectAdmin") in roles


def test_pipeline_acts_as_the_dataflow_worker_account(default_run):
    acts_as = [
        b
        for b in default_run.of_type(ACCOUNT_IAM)
        if b.inputs["role"] == "roles/iam.serviceAccountUser"
    ]
    dataflow = checks.account_email(default_run, "dataflow")
    assert any(
        b.inputs["serviceAccountId"] == f"projects/{GCP_PROJECT}/serviceAccounts/{dataflow}"
        and b.inputs["member"] == _member(default_run, "pipeline")
        for b in acts_as
    )


def test_no_account_gets_project_wide_storage_or_cloud_build_permissions(default_run):
    for r in default_run.of_type(PROJECT_IAM):
        role = r.inputs["role"]
        assert role not in BROAD_ROLES, f"{r.urn}: {role}"
        assert not role.startswith(("roles/storage.", "roles/cloudbuild.")), f"{r.urn}: {role}"
    for role in default_run.of_type(CUSTOM_ROLE):
        held = [p for p in role.inputs["permissions"] if p.startswith(("storage.", "cloudbuild."))]
        assert held == [], f"{role.urn}: {held}"


def test_vertex_account_reads_the_pipeline_root_and_writes_only_under_vertex_staging(
    default_run,
):
    # Defect 8: objectAdmin on the whole pipeline-root bucket.
    vertex = _member(default_run, "vertex")
    artifacts = checks.bucket(default_run, "artifacts").inputs["name"]
    grants = [r for r in default_run.of_type(BUCKET_IAM) if r.inputs["member"] == vertex]
    plain = {
        (r.inputs["bucket"], r.inputs["role"]) for r in grants if not r.inputs.get("condition")
    }
    assert plain == {(artifacts, "roles/storage.objectViewer")}
    conditioned = [r for r in grants if r.inputs.get("condition")]
    assert len(conditioned) == 1
    write = conditioned[0]
    assert (write.inputs["bucket"], write.inputs["role"]) == (
        artifacts,
        "roles/storage.objectAdmin",
    )
    assert write.inputs["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{artifacts}/objects/vertex-staging/")'
    )
    assert write.inputs["condition"]["title"]
    assert default_run.of_type(PROJECT_IAM) and vertex not in {
        r.inputs["member"] for r in default_run.of_type(PROJECT_IAM)
    }, "Vertex trials need no project-wide role"


@pulumi.runtime.test
def test_the_vertex_write_condition_is_the_staging_folder_the_pipeline_uses(default_run):
    # The tune step stages its jobs under the stack output vertex_staging_uri: the one
    # prefix the condition allows writes to.
    vertex = _member(default_run, "vertex")
    write = next(
        r
        for r in default_run.of_type(BUCKET_IAM)
        if r.inputs["member"] == vertex and r.inputs.get("condition")
    )

    def check(uri):
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        assert write.inputs["condition"]["expression"] == (
            f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}/")'
        )

    return default_run.outputs["vertex_staging_uri"].apply(check)


def test_vertex_and_serving_accounts_have_no_registry_access(default_run):
    members = {r.inputs["member"] for r in default_run.of_type(REPOSITORY_IAM)}
    for account in ("vertex", "serving"):
        assert _member(default_run, account) not in members, account


def test_vertex_ai_service_agent_reads_the_repository(default_run):
    # Vertex AI pulls the tune image (trials) and the deploy image (endpoint models) with
    # its own service agent, whichever account the job runs as.
    agent = default_run.one(SERVICE_IDENTITY)
    assert agent.inputs["service"] == "aiplatform.googleapis.com"
    grants = [r for r in default_run.of_type(REPOSITORY_IAM) if r.inputs["member"] == VERTEX_AGENT]
    assert [g.inputs["role"] for g in grants] == ["roles/artifactregistry.reader"]
    assert grants[0].inputs["repository"] == "crypto-kfp-images"
    assert agent.urn in grants[0].dependencies


def test_gke_nodes_pull_every_image_the_serving_pods_run(default_run):
    # Serving pods on GKE pull as the node account, not as their Workload Identity.
    nodes = _member(default_run, "nodes")
    roles = {
        r.inputs["role"] for r in default_run.of_type(REPOSITORY_IAM) if r.inputs["member"] == nodes
    }
    assert roles == {"roles/artifactregistry.reader"}
