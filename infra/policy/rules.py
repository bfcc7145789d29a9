"""Each policy's check: a plain function of a resource's type, its inputs and the policy's
config (and, for the Kubernetes rules, its URN), returning the violations (empty: the
resource complies or is not concerned).

Inputs use the engine's property names (camelCase), as a policy pack and the test harness
both see them. Nothing here imports Pulumi: the engine calls these through ``pack``, the
tests call them directly on the recorded inputs of the real program.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.common.placement import PIPELINES_LABEL

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
BUCKET = "gcp:storage/bucket:Bucket"
KEY = "gcp:serviceaccount/key:Key"
PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
# IAM resources granting on a whole project, folder or organisation.
WIDE_IAM_MODULES = ("gcp:projects/", "gcp:folder/", "gcp:organizations/")
# Permissions no identity of the stack holds on a whole project: object access on every
# bucket, and Cloud Build (cloudbuild.builds.create runs code as the Cloud Build account).
# Storage is granted on a bucket, pushing images on the repository.
WIDE_FORBIDDEN_PERMISSIONS = ("storage.", "cloudbuild.")
WIDE_FORBIDDEN_ROLE_PREFIXES = ("roles/storage.", "roles/cloudbuild.")
# Predefined roles outside those families that carry such permissions. Owner and editor
# carry them too; no-primitive-roles refuses them everywhere.
WIDE_FORBIDDEN_ROLES = frozenset({"roles/dataflow.admin"})
CUSTOM_ROLE_TYPES = (
    "gcp:projects/iAMCustomRole:IAMCustomRole",
    "gcp:organizations/iAMCustomRole:IAMCustomRole",
)
BUCKET_IAM_TYPES = (
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
)
# Bucket roles that let their holder create, overwrite or delete objects.
STORAGE_WRITE_ROLES = frozenset(
    {
        "roles/storage.admin",
        "roles/storage.objectAdmin",
        "roles/storage.objectCreator",
        "roles/storage.objectUser",
        "roles/storage.legacyBucketOwner",
        "roles/storage.legacyBucketWriter",
        "roles/storage.legacyObjectOwner",
    }
)
# Accounts (``<prefix>-<key>@...``) that may write to a bucket only under one prefix, through
# an IAM condition: the Vertex AI tuning trials, which write under vertex-staging/ only.
PREFIX_ONLY_WRITERS = ("vertex",)
PDB_KINDS = ("PodDisruptionBudget", "PodDisruptionBudgetPatch")
PIPELINES_POOL = "pipelines"
RBAC_MODULE = "kubernetes:rbac.authorization.k8s.io/"
NAMESPACE = "kubernetes:core/v1:Namespace"
# Kubeflow Pipelines' own install (its kustomize Directories, inside the KubeflowPipelines
# component) brings cluster roles and namespaces the program does not write; the RBAC and
# namespace rules judge what the program declares itself.
KFP_INSTALL_CHAIN = ("crypto-kfp:infra:KubeflowPipelines", "kubernetes:kustomize/v2:Directory")
# Verbs that let whoever holds a role grant themselves more than the role says.
ESCALATING_VERBS = frozenset({"escalate", "bind", "impersonate"})
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
POD_SECURITY_LEVELS = frozenset({"baseline", "restricted"})

Props = Mapping[str, Any]
Config = Mapping[str, Any]

# The special-signature key the engine uses to mark a secret value inside properties.
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _plain(value: Any) -> Any:
    """A value with a secret wrapper (as the mocks record it) removed."""
    if isinstance(value, Mapping) and _SECRET_SIG in value:
        return value.get("value")
    return value


def dig(props: Props, *path: str, default: Any = None) -> Any:
    """A nested input by path; ``default`` when any step is missing."""
    value: Any = props
    for key in path:
        value = _plain(value)
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    value = _plain(value)
    return default if value is None else value


def _node_configs(resource_type: str, props: Props) -> list[tuple[str, Props]]:
    """The node configurations a cluster (its short-lived default pool) or pool defines."""
    if resource_type in (CLUSTER, NODE_POOL):
        return [(resource_type.rsplit(":", 1)[-1], dig(props, "nodeConfig", default={}))]
    return []


def private_nodes(resource_type: str, props: Props, config: Config) -> list[str]:
    if resource_type == CLUSTER:
        if dig(props, "privateClusterConfig", "enablePrivateNodes") is not True:
            return ["cluster nodes must be private (privateClusterConfig.enablePrivateNodes)"]
    if resource_type == NODE_POOL:
        if dig(props, "networkConfig", "enablePrivateNodes") is False:
            return ["node pool turns private nodes off (networkConfig.enablePrivateNodes)"]
    return []


def workload_identity(resource_type: str, props: Props, config: Config) -> list[str]:
    problems = []
    if resource_type == CLUSTER:
        pool = dig(props, "workloadIdentityConfig", "workloadPool", default="")
        if not str(pool).endswith(".svc.id.goog"):
            problems.append("Workload Identity is off (workloadIdentityConfig.workloadPool)")
    for kind, node_config in _node_configs(resource_type, props):
        mode = dig(node_config, "workloadMetadataConfig", "mode")
        if mode != "GKE_METADATA":
            problems.append(f"{kind} nodes expose the node's credentials (metadata mode {mode!r})")
    return problems


def shielded_nodes(resource_type: str, props: Props, config: Config) -> list[str]:
    problems = []
    if resource_type == CLUSTER and props.get("enableShieldedNodes") is not True:
        problems.append("shielded nodes are off (enableShieldedNodes)")
    for kind, node_config in _node_configs(resource_type, props):
        shielded = dig(node_config, "shieldedInstanceConfig", default={})
        if dig(shielded, "enableSecureBoot") is not True:
            problems.append(f"{kind} nodes without secure boot")
        if dig(shielded, "enableIntegrityMonitoring") is not True:
            problems.append(f"{kind} nodes without integrity monitoring")
    return problems


def no_legacy_auth(resource_type: str, props: Props, config: Config) -> list[str]:
    problems = []
    if resource_type == CLUSTER:
        if props.get("enableLegacyAbac") is not False:
            problems.append("legacy ABAC must be off (enableLegacyAbac false)")
        issue = dig(props, "masterAuth", "clientCertificateConfig", "issueClientCertificate")
        if issue is not False:
            problems.append("a client certificate must not be issued (issueClientCertificate)")
    return problems


def default_pool_removed(resource_type: str, props: Props, config: Config) -> list[str]:
    if resource_type == CLUSTER and props.get("removeDefaultNodePool") is not True:
        return ["the default node pool must be removed (removeDefaultNodePool)"]
    return []


def _is_pipelines_pool(props: Props) -> bool:
    labels = dig(props, "nodeConfig", "labels", default={})
    return props.get("name") == PIPELINES_POOL or all(
        labels.get(k) == v for k, v in PIPELINES_LABEL.items()
    )


def pipelines_pool_spot_from_zero(resource_type: str, props: Props, config: Config) -> list[str]:
    if resource_type != NODE_POOL or not _is_pipelines_pool(props):
        return []
    problems = []
    if dig(props, "nodeConfig", "spot") is not True:
        problems.append("the pipelines pool must run on Spot VMs (nodeConfig.spot)")
    autoscaling = dig(props, "autoscaling", default={})
    low = dig(autoscaling, "totalMinNodeCount", default=dig(autoscaling, "minNodeCount"))
    if low != 0 or dig(props, "initialNodeCount", default=0) != 0:
        problems.append("the pipelines pool must start at and scale back to zero nodes")
    return problems


def bucket_locked_down(resource_type: str, props: Props, config: Config) -> list[str]:
    problems = []
    if resource_type == BUCKET:
        if props.get("uniformBucketLevelAccess") is not True:
            problems.append("bucket allows object ACLs (uniformBucketLevelAccess)")
        if props.get("publicAccessPrevention") != "enforced":
            problems.append("bucket may be made public (publicAccessPrevention enforced)")
    return problems


def is_iam(resource_type: str) -> bool:
    """IAM member, binding and policy resources of every GCP module."""
    kind = resource_type.rsplit(":", 1)[-1].lower()
    return resource_type.startswith("gcp:") and kind.endswith(
        ("iammember", "iambinding", "iampolicy")
    )


def _roles(props: Props) -> list[str]:
    if "role" in props:
        return [str(dig(props, "role"))]
    policy = dig(props, "policyData")
    if isinstance(policy, str):
        try:
            return [b.get("role", "") for b in json.loads(policy).get("bindings", [])]
        except (ValueError, AttributeError):
            return []
    return []


def no_primitive_roles(resource_type: str, props: Props, config: Config) -> list[str]:
    if not is_iam(resource_type):
        return []
    return [f"primitive role {role}" for role in _roles(props) if role in PRIMITIVE_ROLES]


def _is_wide_iam(resource_type: str) -> bool:
    return is_iam(resource_type) and resource_type.startswith(WIDE_IAM_MODULES)


def no_project_storage_or_build_role(resource_type: str, props: Props, config: Config) -> list[str]:
    # Judged by role, whoever the member is: at a preview the member of a new account's
    # grant is not known yet, and the stack grants project roles to its own accounts only.
    if not _is_wide_iam(resource_type):
        return []
    scope = resource_type.split("/")[0][4:]
    return [
        f"{role} on a whole {scope} grants storage or Cloud Build permissions: grant storage "
        "on the bucket, registry access on the repository, and launch Dataflow jobs with a "
        "custom role"
        for role in _roles(props)
        if role.startswith(WIDE_FORBIDDEN_ROLE_PREFIXES) or role in WIDE_FORBIDDEN_ROLES
    ]


def custom_role_no_storage_or_build(resource_type: str, props: Props, config: Config) -> list[str]:
    if resource_type not in CUSTOM_ROLE_TYPES:
        return []
    permissions = [str(p) for p in dig(props, "permissions", default=[])]
    found = sorted(p for p in permissions if p.startswith(WIDE_FORBIDDEN_PERMISSIONS))
    if not found:
        return []
    return [
        f"custom role holds {', '.join(found)}: storage and Cloud Build access is granted on "
        "a bucket or the repository, never through a project role"
    ]


def _account_key(member: str) -> str:
    """``vertex`` for ``serviceAccount:<prefix>-vertex@<project>.iam.gserviceaccount.com``."""
    local = member.removeprefix("serviceAccount:").split("@", 1)[0]
    return local.rsplit("-", 1)[-1]


def prefix_only_writers(resource_type: str, props: Props, config: Config) -> list[str]:
    if resource_type not in BUCKET_IAM_TYPES or dig(props, "role") not in STORAGE_WRITE_ROLES:
        return []
    members = [dig(props, "member")] if "member" in props else dig(props, "members", default=[])
    writers = sorted({_account_key(str(m)) for m in members if m} & set(PREFIX_ONLY_WRITERS))
    if not writers:
        return []
    bucket = re.escape(str(dig(props, "bucket", default="")))
    expression = str(dig(props, "condition", "expression", default="")).strip()
    # Exactly one prefix of this very bucket: a condition on another bucket, on no prefix
    # or with anything added (``||``) would let the account write elsewhere.
    pattern = rf'resource\.name\.startsWith\("projects/_/buckets/{bucket}/objects/[^"/][^"]*/"\)'
    if re.fullmatch(pattern, expression):
        return []
    return [
        f"{dig(props, 'role')} for the {'/'.join(writers)} account without a condition "
        "limiting it to one prefix of this bucket: add resource.name.startsWith("
        '"projects/_/buckets/<bucket>/objects/<prefix>/")'
    ]


def no_service_account_key(resource_type: str, props: Props, config: Config) -> list[str]:
    if resource_type == KEY and not config.get("allowKeys", False):
        return [
            "service-account key: Workload Identity needs none; a stack that needs keys sets "
            "serviceAccountKeys true"
        ]
    return []


def _any_address(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def no_open_control_plane(resource_type: str, props: Props, config: Config) -> list[str]:
    if resource_type != CLUSTER or config.get("allowOpenToAnyAddress", False):
        return []
    networks = dig(props, "masterAuthorizedNetworksConfig")
    if dig(networks or {}, "gcpPublicCidrsAccessEnabled") is True:
        return ["every Google Cloud address may reach the control plane"]
    ip_enabled = dig(props, "controlPlaneEndpointsConfig", "ipEndpointsConfig", "enabled")
    public = dig(props, "privateClusterConfig", "enablePrivateEndpoint") is not True
    if ip_enabled is False or not public:
        return []
    if networks is None:
        return ["the public control-plane endpoint accepts any address (no authorised networks)"]
    blocks = dig(networks, "cidrBlocks", default=[])
    return [
        f"authorised network {cidr} is every address"
        for cidr in (dig(b, "cidrBlock", default="") for b in blocks)
        if _any_address(cidr)
    ]


def _kind(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def from_kfp_install(urn: str) -> bool:
    """True for a resource registered by KFP's kustomize install (its parents' types are in
    the URN: ``urn:pulumi:<stack>::<project>::<parent types and its own, $-joined>::<name>``)."""
    parts = urn.split("::", 3)
    if len(parts) < 4:
        return False
    parents = parts[2].split("$")[:-1]
    it = iter(parents)
    # The component, then (anywhere below it) a Directory: in that order.
    return all(any(p == wanted for p in it) for wanted in KFP_INSTALL_CHAIN)


def _is_cluster_rbac(resource_type: str) -> bool:
    return resource_type.startswith(RBAC_MODULE) and _kind(resource_type).startswith("ClusterRole")


def _is_role_binding(resource_type: str) -> bool:
    return resource_type.startswith(RBAC_MODULE) and _kind(resource_type).startswith("RoleBinding")


def _is_role(resource_type: str) -> bool:
    return resource_type.startswith(RBAC_MODULE) and _kind(resource_type) in (
        "Role",
        "RolePatch",
        "ClusterRole",
        "ClusterRolePatch",
    )


def no_cluster_wide_rbac(resource_type: str, props: Props, config: Config, urn: str) -> list[str]:
    if from_kfp_install(urn):
        return []
    if _is_cluster_rbac(resource_type):
        return [
            f"{_kind(resource_type)} grants across the whole cluster: use a Role and a "
            "RoleBinding in the namespace"
        ]
    if _is_role_binding(resource_type) and dig(props, "roleRef", "kind") == "ClusterRole":
        name = dig(props, "roleRef", "name", default="")
        return [f"RoleBinding to ClusterRole {name!r}: bind a Role that names what it allows"]
    return []


def least_privilege_roles(resource_type: str, props: Props, config: Config, urn: str) -> list[str]:
    if not _is_role(resource_type) or from_kfp_install(urn):
        return []
    problems = []
    for i, rule in enumerate(dig(props, "rules", default=[])):
        groups = list(dig(rule, "apiGroups", default=[]))
        resources = list(dig(rule, "resources", default=[]))
        verbs = list(dig(rule, "verbs", default=[]))
        for field_name, values in (
            ("apiGroups", groups),
            ("resources", resources),
            ("verbs", verbs),
        ):
            if "*" in values:
                problems.append(f"rule {i}: wildcard in {field_name}")
        for verb in sorted(ESCALATING_VERBS.intersection(verbs)):
            problems.append(f"rule {i}: verb {verb!r} lets the holder grant itself more")
        if "rbac.authorization.k8s.io" in groups:
            problems.append(f"rule {i}: access to RBAC objects lets the holder grant itself more")
    return problems


def _is_pdb(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:policy/") and _kind(resource_type) in PDB_KINDS


def _no_disruption(value: Any) -> bool:
    return str(value).strip() in ("0", "0%")


def pdb_max_unavailable(resource_type: str, props: Props, config: Config) -> list[str]:
    # KFP's own install included: a budget that blocks every eviction blocks node upgrades
    # and scale-down whoever declared it.
    if not _is_pdb(resource_type):
        return []
    spec = dig(props, "spec", default={})
    min_available = dig(spec, "minAvailable")
    max_unavailable = dig(spec, "maxUnavailable")
    if min_available is not None:
        return [
            f"minAvailable {min_available}: with as many replicas (1 of 1) no pod may be "
            "evicted and no node drains; state maxUnavailable instead"
        ]
    if max_unavailable is not None and _no_disruption(max_unavailable):
        return [f"maxUnavailable {max_unavailable} allows no eviction: no node drains"]
    if max_unavailable is None and _kind(resource_type) == "PodDisruptionBudget":
        return ["a PodDisruptionBudget states maxUnavailable (1 or more)"]
    return []


def namespace_pod_security(resource_type: str, props: Props, config: Config, urn: str) -> list[str]:
    if resource_type != NAMESPACE or from_kfp_install(urn):
        return []
    level = dig(props, "metadata", "labels", default={}).get(POD_SECURITY_ENFORCE)
    if level not in POD_SECURITY_LEVELS:
        return [
            f"namespace enforces no Pod Security Standard ({POD_SECURITY_ENFORCE} is "
            f"{level!r}; use restricted or baseline)"
        ]
    return []


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[..., list[str]]
    # Whether a resource type is one the rule examines (tests require one in the program).
    applies_to: Callable[[str], bool]
    # JSON schema properties of the rule's config, with their defaults.
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The check also takes the resource's URN (to tell KFP's own install apart).
    uses_urn: bool = False

    def __call__(
        self, resource_type: str, props: Props, config: Config | None = None, urn: str = ""
    ) -> list[str]:
        defaults = {key: spec["default"] for key, spec in self.config.items()}
        merged = {**defaults, **(config or {})}
        if self.uses_urn:
            return self.check(resource_type, props, merged, urn)
        return self.check(resource_type, props, merged)


def _types(*names: str) -> Callable[[str], bool]:
    return lambda resource_type: resource_type in names


RULES = (
    Rule(
        "private-nodes",
        "GKE nodes have no public IP address.",
        private_nodes,
        _types(CLUSTER, NODE_POOL),
    ),
    Rule(
        "workload-identity",
        "Workload Identity on the cluster and the GKE metadata server on every pool.",
        workload_identity,
        _types(CLUSTER, NODE_POOL),
    ),
    Rule(
        "shielded-nodes",
        "Shielded nodes with secure boot and integrity monitoring.",
        shielded_nodes,
        _types(CLUSTER, NODE_POOL),
    ),
    Rule(
        "no-legacy-auth",
        "No legacy ABAC and no client certificate: only IAM and RBAC authorise.",
        no_legacy_auth,
        _types(CLUSTER),
    ),
    Rule(
        "default-pool-removed",
        "The default node pool is removed; every node belongs to a declared pool.",
        default_pool_removed,
        _types(CLUSTER),
    ),
    Rule(
        "pipelines-pool-spot-from-zero",
        "The pipelines pool runs on Spot VMs and scales from zero.",
        pipelines_pool_spot_from_zero,
        _types(NODE_POOL),
    ),
    Rule(
        "bucket-locked-down",
        "Every bucket has uniform bucket-level access and enforced public access prevention.",
        bucket_locked_down,
        _types(BUCKET),
    ),
    Rule(
        "no-primitive-roles",
        "No owner, editor or viewer role anywhere.",
        no_primitive_roles,
        is_iam,
    ),
    Rule(
        "no-project-storage-or-build-role",
        "No role with storage or Cloud Build permissions (roles/storage.*, roles/cloudbuild.*, "
        "roles/dataflow.admin; owner and editor are refused everywhere) on a project, folder "
        "or organisation: storage is granted on buckets, pushing on the repository.",
        no_project_storage_or_build_role,
        _is_wide_iam,
    ),
    Rule(
        "custom-role-no-storage-or-build",
        "No custom role holds storage.* or cloudbuild.* permissions.",
        custom_role_no_storage_or_build,
        lambda t: t in CUSTOM_ROLE_TYPES,
    ),
    Rule(
        "prefix-only-writers",
        "The Vertex AI trial account writes to a bucket only under one prefix, through an IAM "
        "condition on that bucket's objects/<prefix>/.",
        prefix_only_writers,
        lambda t: t in BUCKET_IAM_TYPES,
    ),
    Rule(
        "no-service-account-key",
        "No service-account key unless the stack allows keys (policy config allowKeys).",
        no_service_account_key,
        _types(KEY),
        config={"allowKeys": {"type": "boolean", "default": False}},
    ),
    Rule(
        "no-open-control-plane",
        "No control-plane endpoint open to any address, unless the stack opens it on purpose "
        "(policy config allowOpenToAnyAddress).",
        no_open_control_plane,
        _types(CLUSTER),
        config={"allowOpenToAnyAddress": {"type": "boolean", "default": False}},
    ),
    Rule(
        "no-cluster-wide-rbac",
        "No ClusterRole or ClusterRoleBinding, and no RoleBinding to a ClusterRole, outside "
        "Kubeflow Pipelines' own install: the program grants in one namespace at a time.",
        no_cluster_wide_rbac,
        lambda t: _is_cluster_rbac(t) or _is_role_binding(t),
        uses_urn=True,
    ),
    Rule(
        "least-privilege-roles",
        "Roles name their API groups, resources and verbs: no wildcard, no escalate, bind "
        "or impersonate, no access to RBAC objects.",
        least_privilege_roles,
        _is_role,
        uses_urn=True,
    ),
    Rule(
        "pdb-max-unavailable",
        "PodDisruptionBudgets state maxUnavailable (1 or more), never minAvailable: a budget "
        "equal to the replica count blocks every node drain.",
        pdb_max_unavailable,
        _is_pdb,
    ),
    Rule(
        "namespace-pod-security",
        "Every namespace the program creates enforces the restricted (or baseline) Pod "
        "Security Standard.",
        namespace_pod_security,
        _types(NAMESPACE),
        uses_urn=True,
    ),
)
