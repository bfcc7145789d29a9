"""Service accounts and IAM: least privilege, on the narrowest resource."""

from __future__ import annotations

from tests.infra import checks
from tests.infra.checks import ACCOUNT, ACCOUNT_IAM, BUCKET_IAM, CLUSTER, PROJECT_IAM
from tests.infra.harness import GCP_PROJECT

# Project-level roles the design allows, each because no narrower resource exists.
ALLOWED_PROJECT_ROLES = {
    "roles/container.defaultNodeServiceAccount",
    "roles/dataflow.admin",
    "roles/dataflow.worker",
    "roles/aiplatform.user",
}


def test_service_accounts_exist_for_each_workload(default_run):
    ids = {a.inputs["accountId"] for a in default_run.of_type(ACCOUNT)}
    assert ids == {
        f"crypto-kfp-{k}" for k in ("nodes", "pipeline", "dataflow", "vertex", "kfp-ui", "serving")
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
        for p in ("raw", "artifacts", "df-temp", "df-staging", "models")
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


def test_pipeline_may_create_dataflow_jobs_and_act_as_the_worker(default_run):
    roles = {
        r.inputs["role"]
        for r in default_run.of_type(PROJECT_IAM)
        if r.inputs["member"] == f"serviceAccount:{checks.account_email(default_run, 'pipeline')}"
    }
    # dataflow.developer alone lacks compute.machineTypes.get, compute.regions.list, ...
    assert (
        "roles/dataflow.admin" in roles
        or {
            "roles/dataflow.developer",
            "roles/compute.viewer",
        }
        <= roles
    ), roles
    acts_as = [
        b
        for b in default_run.of_type(ACCOUNT_IAM)
        if b.inputs["role"] == "roles/iam.serviceAccountUser"
    ]
    targets = {b.inputs["serviceAccountId"] for b in acts_as}
    dataflow = checks.account_email(default_run, "dataflow")
    assert f"projects/demo-project-123/serviceAccounts/{dataflow}" in targets
    assert all(
        b.inputs["member"] == f"serviceAccount:{checks.account_email(default_run, 'pipeline')}"
        for b in acts_as
    )


def test_vertex_account_reads_the_image_repository_and_the_pipeline_root_bucket_only(default_run):
    vertex = f"serviceAccount:{checks.account_email(default_run, 'vertex')}"
    repo = [
        r.inputs["role"]
        for r in default_run.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
        if r.inputs["member"] == vertex
    ]
    assert repo == ["roles/artifactregistry.reader"]
    project = [
        r.inputs["role"] for r in default_run.of_type(PROJECT_IAM) if r.inputs["member"] == vertex
    ]
    assert project == [], "Vertex trials need no project-wide role"
    buckets = {
        (r.inputs["bucket"], r.inputs["role"])
        for r in default_run.of_type(BUCKET_IAM)
        if r.inputs["member"] == vertex
    }
    artifacts = checks.bucket(default_run, "artifacts").inputs["name"]
    assert (artifacts, "roles/storage.objectAdmin") in buckets


def test_vertex_trials_no_longer_read_the_models_bucket(default_run):
    # Serving moved to its own account; tuning trials only need the pipeline root.
    assert _bucket_roles(default_run, "vertex") == {("artifacts", "roles/storage.objectAdmin")}
