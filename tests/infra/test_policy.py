"""The policy pack: every policy passes on the real program and fails on exactly the property
it guards.

The program runs under the mocks (default, keys, protect and the other settings); every
policy function runs on every recorded resource with the policy config ``make`` would
derive from that stack's settings. Then one property of one recorded resource is broken, and
exactly that policy, and no other, must report it.
"""

from __future__ import annotations

import copy
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi_policy
import pytest
import yaml

from components.deploy import gke
from infra.identity import DATAFLOW_LAUNCHER
from infra.policy import pack, rules
from infra.policy.stack_config import policy_config
from tests.infra.checks import (
    ACCOUNT_IAM,
    BUCKET,
    BUCKET_IAM,
    CLUSTER,
    KEY,
    NAMESPACE,
    NODE_POOL,
    PROJECT_IAM,
    REPOSITORY_IAM,
    ROLE,
    ROLE_BINDING,
)
from tests.infra.harness import (
    CUSTOM_ROLE,
    PROJECT_ROOT,
    ProgramRun,
    run_program,
    stack_config,
)

POLICY_DIR = PROJECT_ROOT / "infra" / "policy"
RULES = {rule.name: rule for rule in rules.RULES}
STACKS = {
    "default": {},
    "keys": {"serviceAccountKeys": True},
    "protect": {"protect": True},
    "open-endpoint": {"controlPlaneOpenToAnyAddress": True},
    "authorised-networks": {"masterAuthorizedNetworks": ["203.0.113.7/32"]},
    "paused": {"paused": True},
    "budget": {"billingAccount": "012345-6789AB-CDEF01", "monthlyBudget": 50},
}


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[ProgramRun, dict[str, Any]]]:
    """Each stack's run and the policy config `make` would write for it."""
    result = {}
    for name, overrides in STACKS.items():
        config = stack_config(**overrides)
        result[name] = (run_program(config), policy_config(config))
    return result


def violations(
    resource_type: str, props: dict, config: dict, urn: str = ""
) -> dict[str, list[str]]:
    """Every policy's violations for one resource (policies without any left out)."""
    found = {}
    for name, rule in RULES.items():
        messages = rule(resource_type, props, config.get(name), urn=urn)
        if messages:
            found[name] = messages
    return found


@pytest.mark.parametrize("stack", list(STACKS))
def test_every_policy_passes_on_the_program(runs, stack):
    run, config = runs[stack]
    failing = {
        r.urn: found
        for r in run.resources
        if (found := violations(r.type, r.inputs, config, r.urn))
    }
    assert failing == {}


# Policies whose resources the program does not declare today, each tested on its own below.
NOT_IN_PROGRAM = {
    # The deploy step creates the serving PodDisruptionBudget; the policy stops one that the
    # stack (or a KFP release) would declare from blocking node drains.
    "pdb-max-unavailable",
}


@pytest.mark.parametrize("name", sorted(set(RULES) - NOT_IN_PROGRAM))
def test_every_policy_examines_something_in_the_program(runs, name):
    # A policy matching no resource would pass vacuously.
    run, _ = runs["keys"]
    assert any(RULES[name].applies_to(r.type) for r in run.resources), name


def test_policies_outside_the_program_are_named_and_real():
    assert NOT_IN_PROGRAM <= set(RULES)


def _set(props: dict, path: tuple[str, ...], value: Any) -> None:
    """Sets (or, for ``DELETE``, removes) one nested input."""
    *parents, last = path
    target = props
    for key in parents:
        target = target.setdefault(key, {})
    if value is DELETE:
        target.pop(last)
    else:
        target[last] = value


DELETE = object()


def _pipelines(r) -> bool:
    return r.inputs.get("name") == "pipelines"


def _system(r) -> bool:
    return r.inputs.get("name") == "system"


def _serving_binding(r) -> bool:
    return r.inputs.get("roleRef", {}).get("name") == "serving-deployer"


def _project_role(role: str):
    return lambda r: r.inputs.get("role") == role


def _vertex(r) -> bool:
    return r.inputs.get("member", "").startswith("serviceAccount:crypto-kfp-vertex@")


def _vertex_write(r) -> bool:
    return _vertex(r) and bool(r.inputs.get("condition"))


def _vertex_read(r) -> bool:
    return _vertex(r) and not r.inputs.get("condition")


OTHER_BUCKET_PREFIX = 'resource.name.startsWith("projects/_/buckets/other/objects/vertex-staging/")'
WHOLE_BUCKET = (
    'resource.name.startsWith("projects/_/buckets/demo-project-123-crypto-kfp-artifacts/objects/")'
)


# (policy, resource type, which resource, the property broken, its broken value)
BROKEN = [
    ("private-nodes", CLUSTER, None, ("privateClusterConfig", "enablePrivateNodes"), False),
    ("private-nodes", NODE_POOL, _system, ("networkConfig", "enablePrivateNodes"), False),
    ("workload-identity", CLUSTER, None, ("workloadIdentityConfig",), DELETE),
    (
        "workload-identity",
        CLUSTER,
        None,
        ("nodeConfig", "workloadMetadataConfig", "mode"),
        "GCE_METADATA",
    ),
    (
        "workload-identity",
        NODE_POOL,
        _pipelines,
        ("nodeConfig", "workloadMetadataConfig", "mode"),
        "GCE_METADATA",
    ),
    ("shielded-nodes", CLUSTER, None, ("enableShieldedNodes",), False),
    (
        "shielded-nodes",
        NODE_POOL,
        _system,
        ("nodeConfig", "shieldedInstanceConfig", "enableSecureBoot"),
        False,
    ),
    (
        "shielded-nodes",
        NODE_POOL,
        _pipelines,
        ("nodeConfig", "shieldedInstanceConfig", "enableIntegrityMonitoring"),
        False,
    ),
    ("no-legacy-auth", CLUSTER, None, ("enableLegacyAbac",), True),
    (
        "no-legacy-auth",
        CLUSTER,
        None,
        ("masterAuth", "clientCertificateConfig", "issueClientCertificate"),
        True,
    ),
    ("default-pool-removed", CLUSTER, None, ("removeDefaultNodePool",), False),
    ("pipelines-pool-spot-from-zero", NODE_POOL, _pipelines, ("nodeConfig", "spot"), False),
    (
        "pipelines-pool-spot-from-zero",
        NODE_POOL,
        _pipelines,
        ("autoscaling", "totalMinNodeCount"),
        1,
    ),
    ("bucket-locked-down", BUCKET, None, ("uniformBucketLevelAccess",), False),
    ("bucket-locked-down", BUCKET, None, ("publicAccessPrevention",), "inherited"),
    ("no-primitive-roles", PROJECT_IAM, None, ("role",), "roles/editor"),
    ("no-primitive-roles", BUCKET_IAM, None, ("role",), "roles/owner"),
    ("no-primitive-roles", REPOSITORY_IAM, None, ("role",), "roles/viewer"),
    ("no-primitive-roles", ACCOUNT_IAM, None, ("role",), "roles/owner"),
    (
        "no-project-storage-or-build-role",
        PROJECT_IAM,
        None,
        ("role",),
        "roles/storage.objectViewer",
    ),
    ("no-project-storage-or-build-role", PROJECT_IAM, None, ("role",), "roles/storage.admin"),
    # Issue 21, defect 4: dataflow.admin holds storage.objects.* and cloudbuild.builds.create.
    ("no-project-storage-or-build-role", PROJECT_IAM, None, ("role",), "roles/dataflow.admin"),
    (
        "no-project-storage-or-build-role",
        PROJECT_IAM,
        None,
        ("role",),
        "roles/cloudbuild.builds.editor",
    ),
    (
        "custom-role-no-storage-or-build",
        CUSTOM_ROLE,
        None,
        ("permissions",),
        [*DATAFLOW_LAUNCHER, "storage.objects.create", "storage.objects.get"],
    ),
    (
        "custom-role-no-storage-or-build",
        CUSTOM_ROLE,
        None,
        ("permissions",),
        [*DATAFLOW_LAUNCHER, "cloudbuild.builds.create"],
    ),
    # Issue 21, defect 8: the vertex account writes under vertex-staging/ only.
    ("prefix-only-writers", BUCKET_IAM, _vertex_write, ("condition",), DELETE),
    (
        "prefix-only-writers",
        BUCKET_IAM,
        _vertex_write,
        ("condition", "expression"),
        OTHER_BUCKET_PREFIX,
    ),
    ("prefix-only-writers", BUCKET_IAM, _vertex_write, ("condition", "expression"), WHOLE_BUCKET),
    (
        "prefix-only-writers",
        BUCKET_IAM,
        _vertex_read,
        ("role",),
        "roles/storage.objectCreator",
    ),
    (
        "no-open-control-plane",
        CLUSTER,
        None,
        ("masterAuthorizedNetworksConfig", "gcpPublicCidrsAccessEnabled"),
        True,
    ),
    ("no-cluster-wide-rbac", ROLE_BINDING, _serving_binding, ("roleRef", "kind"), "ClusterRole"),
    (
        "namespace-pod-security",
        NAMESPACE,
        None,
        ("metadata", "labels", "pod-security.kubernetes.io/enforce"),
        "privileged",
    ),
    (
        "namespace-pod-security",
        NAMESPACE,
        None,
        ("metadata", "labels", "pod-security.kubernetes.io/enforce"),
        DELETE,
    ),
]


@pytest.mark.parametrize(
    ("policy", "resource_type", "select", "path", "value"),
    BROKEN,
    ids=[f"{b[0]}:{b[1].rsplit(':', 1)[-1]}:{'.'.join(b[3])}" for b in BROKEN],
)
def test_each_policy_fails_on_exactly_its_broken_property(
    runs, policy, resource_type, select, path, value
):
    run, config = runs["default"]
    candidates = [r for r in run.of_type(resource_type) if select is None or select(r)]
    assert candidates, f"no {resource_type} in the program"
    for resource in candidates:
        assert violations(resource.type, resource.inputs, config, resource.urn) == {}, resource.urn
        broken = copy.deepcopy(resource.inputs)
        _set(broken, path, value)
        found = violations(resource.type, broken, config, resource.urn)
        assert set(found) == {policy}, f"{resource.urn} with {path}={value!r}: {found}"
        assert len(found[policy]) == 1, found


def test_an_endpoint_open_to_any_address_is_refused_unless_allowed(runs):
    default, config = runs["default"]
    cluster = copy.deepcopy(default.one(CLUSTER).inputs)
    _set(cluster, ("privateClusterConfig", "enablePrivateEndpoint"), False)
    _set(cluster, ("masterAuthorizedNetworksConfig",), DELETE)
    assert set(violations(CLUSTER, cluster, config)) == {"no-open-control-plane"}

    # The program's own open stack: refused without the setting's config, allowed with it.
    open_run, open_config = runs["open-endpoint"]
    props = open_run.one(CLUSTER).inputs
    assert open_config["no-open-control-plane"] == {"allowOpenToAnyAddress": True}
    assert set(violations(CLUSTER, props, config)) == {"no-open-control-plane"}
    assert violations(CLUSTER, props, open_config) == {}


def test_an_authorised_network_of_every_address_is_refused(runs):
    run, config = runs["authorised-networks"]
    cluster = copy.deepcopy(run.one(CLUSTER).inputs)
    cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"][0]["cidrBlock"] = "0.0.0.0/0"
    assert set(violations(CLUSTER, cluster, config)) == {"no-open-control-plane"}


def test_a_public_endpoint_without_authorised_networks_is_refused(runs):
    # The default stack is closed twice over (no public IP endpoint, and authorised networks
    # with no range), so one property cannot open it; a stack with named ranges has the
    # public endpoint on, and dropping its network list opens it.
    run, config = runs["authorised-networks"]
    cluster = copy.deepcopy(run.one(CLUSTER).inputs)
    assert violations(CLUSTER, cluster, config) == {}
    _set(cluster, ("masterAuthorizedNetworksConfig",), DELETE)
    assert set(violations(CLUSTER, cluster, config)) == {"no-open-control-plane"}


def test_a_key_is_refused_unless_the_stack_allows_keys(runs):
    keys_run, keys_config = runs["keys"]
    _, default_config = runs["default"]
    key = keys_run.one(KEY)
    assert keys_config["no-service-account-key"] == {"allowKeys": True}
    assert violations(KEY, key.inputs, keys_config) == {}
    assert set(violations(KEY, key.inputs, default_config)) == {"no-service-account-key"}
    # No config at all (a bare --policy-pack): refused.
    assert RULES["no-service-account-key"](KEY, key.inputs) != []


def test_a_primitive_role_in_an_iam_policy_document_is_refused():
    document = '{"bindings": [{"role": "roles/owner", "members": ["user:a@example.com"]}]}'
    found = violations("gcp:projects/iAMPolicy:IAMPolicy", {"policyData": document}, {})
    assert set(found) == {"no-primitive-roles"}


def test_policy_config_from_pulumi_config_json():
    # The shape `pulumi config --json` prints.
    printed = {
        "crypto-kfp:serviceAccountKeys": {"value": "true", "secret": False},
        "crypto-kfp:controlPlaneOpenToAnyAddress": {"value": "false", "secret": False},
        "gcp:project": {"value": "demo-project-123", "secret": False},
    }
    assert policy_config(printed) == {
        "no-service-account-key": {"allowKeys": True},
        "no-open-control-plane": {"allowOpenToAnyAddress": False},
    }
    assert policy_config({}) == {
        "no-service-account-key": {"allowKeys": False},
        "no-open-control-plane": {"allowOpenToAnyAddress": False},
    }


def test_pack_serves_every_rule_as_a_mandatory_policy(monkeypatch):
    served = {}

    def fake_pack(**kwargs):
        served.update(kwargs)

    # The real PolicyPack starts the engine's gRPC server and never returns.
    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    runpy.run_path(str(POLICY_DIR), run_name="__main__")
    assert served["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    policies = served["policies"]
    assert [p.name for p in policies] == list(RULES)
    assert all(isinstance(p, pulumi_policy.ResourceValidationPolicy) for p in policies)


def test_a_wrapped_policy_reports_what_its_rule_finds():
    policy = next(p for p in pack.build_policies() if p.name == "no-service-account-key")
    assert set(policy.config_schema.properties) == {"allowKeys"}

    def reported(allow: bool) -> list[str]:
        messages: list[str] = []
        args = SimpleNamespace(
            resource_type=KEY, props={}, urn="", get_config=lambda: {"allowKeys": allow}
        )
        policy.validate(args, lambda message, urn=None: messages.append(message))
        return messages

    assert reported(False) == RULES["no-service-account-key"](KEY, {})
    assert reported(False) != []
    assert reported(True) == []


def test_policy_pack_project_file_runs_in_the_project_venv():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    venv = (POLICY_DIR / project["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == (PROJECT_ROOT / ".venv").resolve()
    assert Path(POLICY_DIR / "__main__.py").is_file()


# What the engine would name a resource of KFP's kustomize install (its parents' types in
# the URN), and one the program declared itself.
KFP_CHAIN = "crypto-kfp:infra:KubeflowPipelines$kubernetes:kustomize/v2:Directory"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"


def _urn(chain: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:dev::crypto-kfp::{chain}${resource_type}::{name}"


def test_kfp_install_is_told_apart_by_its_parents_types():
    assert rules.from_kfp_install(_urn(KFP_CHAIN, CLUSTER_ROLE, "kfp-cluster-scoped:x"))
    # A Directory outside the KFP component, or a resource the KFP component declares
    # itself (not through the install), is the program's own.
    assert not rules.from_kfp_install(
        _urn("kubernetes:kustomize/v2:Directory", CLUSTER_ROLE, "other")
    )
    assert not rules.from_kfp_install(
        _urn("crypto-kfp:infra:KubeflowPipelines", CLUSTER_ROLE, "kfp-extra")
    )
    # The order matters: the Directory must be below the component.
    assert not rules.from_kfp_install(
        _urn(
            "kubernetes:kustomize/v2:Directory$crypto-kfp:infra:KubeflowPipelines",
            CLUSTER_ROLE,
            "x",
        )
    )
    assert not rules.from_kfp_install("")


@pytest.mark.parametrize(
    "resource_type",
    [
        CLUSTER_ROLE,
        CLUSTER_ROLE_BINDING,
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRolePatch",
    ],
)
def test_a_cluster_wide_grant_is_refused_unless_kfp_installs_it(runs, resource_type):
    run, config = runs["default"]
    # The serving Role's own rules, made cluster-wide.
    role = copy.deepcopy(run.one(ROLE).inputs)
    role["kind"] = resource_type.rsplit(":", 1)[-1]
    role["metadata"].pop("namespace")
    ours = _urn("crypto-kfp:infra:ServingNamespace", resource_type, "serving-wide")
    assert set(violations(resource_type, role, config, ours)) == {"no-cluster-wide-rbac"}
    kfp = _urn(KFP_CHAIN, resource_type, "kfp-cluster-scoped:wide")
    assert violations(resource_type, role, config, kfp) == {}


def _role_with(run, rule_index: int, **fields) -> dict:
    role = copy.deepcopy(run.one(ROLE).inputs)
    role["rules"][rule_index].update(fields)
    return role


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"verbs": ["*"]}, "rule 0: wildcard in verbs"),
        ({"resources": ["*"]}, "rule 0: wildcard in resources"),
        ({"apiGroups": ["*"]}, "rule 0: wildcard in apiGroups"),
        ({"verbs": ["get", "impersonate"]}, "rule 0: verb 'impersonate' lets"),
        ({"verbs": ["bind"]}, "rule 0: verb 'bind' lets"),
        (
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"]},
            "rule 0: access to RBAC objects",
        ),
    ],
)
def test_a_role_that_can_grant_more_than_it_names_is_refused(runs, fields, expected):
    run, config = runs["default"]
    role = run.one(ROLE)
    assert violations(ROLE, role.inputs, config, role.urn) == {}
    found = violations(ROLE, _role_with(run, 0, **fields), config, role.urn)
    assert set(found) == {"least-privilege-roles"}, found
    assert len(found["least-privilege-roles"]) == 1, found
    assert found["least-privilege-roles"][0].startswith(expected), found
    # KFP's install is judged by upstream, not by this rule.
    kfp = _urn(KFP_CHAIN, ROLE, "kfp-platform:argo-role")
    assert violations(ROLE, _role_with(run, 0, **fields), config, kfp) == {}


def test_a_namespace_of_the_kfp_install_needs_no_pod_security_label(runs):
    run, config = runs["default"]
    bare = {"metadata": {"name": "kubeflow"}, "kind": "Namespace", "apiVersion": "v1"}
    kfp = _urn(KFP_CHAIN, NAMESPACE, "kfp-cluster-scoped:kubeflow")
    assert violations(NAMESPACE, bare, config, kfp) == {}
    ours = run.one(NAMESPACE).urn
    assert set(violations(NAMESPACE, bare, config, ours)) == {"namespace-pod-security"}


# --- PodDisruptionBudgets (issue 21, defect 5) ----------------------------------------------

PDB = "kubernetes:policy/v1:PodDisruptionBudget"
PDB_BETA = "kubernetes:policy/v1beta1:PodDisruptionBudget"
PDB_PATCH = "kubernetes:policy/v1:PodDisruptionBudgetPatch"


def _pdb(resource_type: str = PDB, **spec) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": resource_type.rsplit(":", 1)[-1],
        "metadata": {"name": "btc-forecast", "namespace": "serving"},
        "spec": {"selector": {"matchLabels": {"app": "btc-forecast"}}, **spec},
    }


@pytest.mark.parametrize(
    ("resource_type", "spec", "expected"),
    [
        (PDB, {"minAvailable": 1}, "minAvailable 1"),
        (PDB, {"minAvailable": "50%"}, "minAvailable 50%"),
        (PDB_BETA, {"minAvailable": 1}, "minAvailable 1"),
        (PDB_PATCH, {"minAvailable": 1}, "minAvailable 1"),
        (PDB, {"minAvailable": 1, "maxUnavailable": 1}, "minAvailable 1"),
        (PDB, {"maxUnavailable": 0}, "maxUnavailable 0 allows no eviction"),
        (PDB, {"maxUnavailable": "0%"}, "maxUnavailable 0% allows no eviction"),
        (PDB, {}, "a PodDisruptionBudget states maxUnavailable"),
    ],
)
def test_a_budget_that_can_block_every_drain_is_refused(resource_type, spec, expected):
    for urn in ("", _urn(KFP_CHAIN, resource_type, "kfp-platform:budget")):
        found = violations(resource_type, _pdb(resource_type, **spec), {}, urn)
        assert set(found) == {"pdb-max-unavailable"}, found
        assert len(found["pdb-max-unavailable"]) == 1, found
        assert found["pdb-max-unavailable"][0].startswith(expected), found


@pytest.mark.parametrize(
    ("resource_type", "spec"),
    [
        (PDB, {"maxUnavailable": 1}),
        (PDB, {"maxUnavailable": "50%"}),
        (PDB_BETA, {"maxUnavailable": 1}),
        (PDB_PATCH, {"maxUnavailable": 1}),
        (PDB_PATCH, {}),
    ],
)
def test_a_budget_with_max_unavailable_passes(resource_type, spec):
    assert violations(resource_type, _pdb(resource_type, **spec), {}) == {}


@pytest.mark.parametrize(("low", "high"), [(1, 1), (1, 3), (2, 4)])
def test_the_deploy_steps_budget_passes_the_policy(low, high):
    # The budget components/deploy applies in the serving namespace, at any replica count.
    image = "r.example/deploy@sha256:" + "0" * 64
    target = gke.GkeTarget(image=image, min_replicas=low, max_replicas=high)
    uri = "gs://models/repository"
    objects = gke.manifests(target, "btc-forecast", "v1", uri, [{"version": "v1", "uri": uri}])
    budgets = [m for m in objects if m["kind"] == "PodDisruptionBudget"]
    assert len(budgets) == 1
    assert violations(PDB, budgets[0], {}) == {}


# --- IAM rules for issue 21 (defects 4 and 8) -----------------------------------------------


def test_the_program_grants_no_broad_project_role_and_its_custom_role_is_narrow(runs):
    run, config = runs["default"]
    role = run.one(CUSTOM_ROLE)
    assert violations(CUSTOM_ROLE, role.inputs, config, role.urn) == {}
    assert set(role.inputs["permissions"]) == set(DATAFLOW_LAUNCHER)


def test_a_storage_or_build_role_in_a_project_policy_document_is_refused():
    document = (
        '{"bindings": [{"role": "roles/dataflow.admin", '
        '"members": ["serviceAccount:crypto-kfp-pipeline@p.iam.gserviceaccount.com"]}]}'
    )
    found = violations("gcp:projects/iAMPolicy:IAMPolicy", {"policyData": document}, {})
    assert set(found) == {"no-project-storage-or-build-role"}


def test_a_storage_role_on_a_bucket_is_not_a_project_grant(runs):
    run, config = runs["default"]
    grant = next(r for r in run.of_type(BUCKET_IAM) if r.inputs["role"].startswith("roles/storage"))
    assert "no-project-storage-or-build-role" not in violations(
        grant.type, grant.inputs, config, grant.urn
    )


def test_the_vertex_write_without_its_prefix_condition_is_refused_at_the_program_level(
    monkeypatch,
):
    # The real program, with the vertex account's write given on the whole bucket again
    # (the grant before the fix): the policy refuses that grant and nothing else.
    import infra.identity

    monkeypatch.setattr(infra.identity, "PREFIX_WRITES", {})
    monkeypatch.setattr(
        infra.identity,
        "BUCKET_ROLES",
        {**infra.identity.BUCKET_ROLES, ("vertex", "artifacts"): (infra.identity.ADMIN,)},
    )
    run = run_program(stack_config())
    config = policy_config(stack_config())
    failing = {
        r.urn: found
        for r in run.resources
        if (found := violations(r.type, r.inputs, config, r.urn))
    }
    assert len(failing) == 1, failing
    assert set(next(iter(failing.values()))) == {"prefix-only-writers"}
