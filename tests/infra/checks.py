"""Property checks over one recorded program run.

Each check raises AssertionError naming the resource (URN) that breaks the property. The
tests call them on real runs; test_broken_properties.py runs the program with a property
deliberately broken and shows the same check failing.
"""

from __future__ import annotations

from tests.infra.harness import GCP_PROJECT, ProgramRun, Registered, dig

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
BUCKET = "gcp:storage/bucket:Bucket"
FIREWALL = "gcp:compute/firewall:Firewall"
ACCOUNT = "gcp:serviceaccount/account:Account"
KEY = "gcp:serviceaccount/key:Key"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
BUCKET_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPOSITORY_IAM = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
ACCOUNT_IAM = "gcp:serviceaccount/iAMMember:IAMMember"
IAM_TYPES = (PROJECT_IAM, BUCKET_IAM, REPOSITORY_IAM, ACCOUNT_IAM)
DIRECTORY = "kubernetes:kustomize/v2:Directory"
CONFIG_MAP_PATCH = "kubernetes:core/v1:ConfigMapPatch"
SERVICE_ACCOUNT_PATCH = "kubernetes:core/v1:ServiceAccountPatch"
K8S_SECRET = "kubernetes:core/v1:Secret"
K8S_PROVIDER = "pulumi:providers:kubernetes"
SERVICE = "gcp:projects/service:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
VERTEX_ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
BUDGET = "gcp:billing/budget:Budget"

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
KFP_MANIFESTS = "github.com/kubeflow/pipelines/manifests/kustomize"
DATA_BUCKETS = ("raw", "artifacts", "models")
SCRATCH_BUCKETS = ("df-temp", "df-staging", "build-src")


def bucket(run: ProgramRun, purpose: str) -> Registered:
    found = [b for b in run.of_type(BUCKET) if dig(b.inputs, "labels", "purpose") == purpose]
    assert len(found) == 1, (
        f"expected one bucket labelled purpose={purpose}, found {[b.urn for b in found]}"
    )
    return found[0]


def account_email(run: ProgramRun, key: str) -> str:
    account = next(a for a in run.of_type(ACCOUNT) if a.inputs["accountId"].endswith(f"-{key}"))
    return f"{account.inputs['accountId']}@{GCP_PROJECT}.iam.gserviceaccount.com"


def node_pools(run: ProgramRun) -> list[Registered]:
    pools = run.of_type(NODE_POOL)
    assert {p.inputs["name"] for p in pools} == {"system", "pipelines"}, (
        f"unexpected node pools {pools}"
    )
    return pools


def pool(run: ProgramRun, name: str) -> Registered:
    return next(p for p in node_pools(run) if p.inputs["name"] == name)


def check_private_nodes(run: ProgramRun) -> None:
    cluster = run.one(CLUSTER)
    assert dig(cluster.inputs, "privateClusterConfig", "enablePrivateNodes") is True, (
        f"{cluster.urn}: nodes are not private"
    )


def check_workload_identity(run: ProgramRun) -> None:
    cluster = run.one(CLUSTER)
    pool_id = dig(cluster.inputs, "workloadIdentityConfig", "workloadPool")
    assert pool_id == f"{GCP_PROJECT}.svc.id.goog", (
        f"{cluster.urn}: Workload Identity pool is {pool_id!r}"
    )
    # The short-lived default pool and every real pool expose only the GKE metadata server.
    for resource in [cluster, *node_pools(run)]:
        mode = dig(resource.inputs, "nodeConfig", "workloadMetadataConfig", "mode")
        assert mode == "GKE_METADATA", f"{resource.urn}: workload metadata mode is {mode!r}"


def check_shielded_nodes(run: ProgramRun) -> None:
    cluster = run.one(CLUSTER)
    assert cluster.inputs.get("enableShieldedNodes") is True, f"{cluster.urn}: shielded nodes off"
    for resource in [cluster, *node_pools(run)]:
        shielded = dig(resource.inputs, "nodeConfig", "shieldedInstanceConfig", default={})
        assert shielded.get("enableSecureBoot") is True, f"{resource.urn}: secure boot off"
        assert shielded.get("enableIntegrityMonitoring") is True, (
            f"{resource.urn}: integrity monitoring off"
        )


def check_pipelines_pool(run: ProgramRun) -> None:
    pipelines = pool(run, "pipelines")
    config = pipelines.inputs["nodeConfig"]
    assert config.get("spot") is True, f"{pipelines.urn}: not spot"
    taints = config.get("taints") or []
    assert {"key": "pool", "value": "pipelines", "effect": "NO_SCHEDULE"} in taints, (
        f"{pipelines.urn}: taints {taints}"
    )
    assert config.get("labels") == {"pool": "pipelines"}, (
        f"{pipelines.urn}: labels {config.get('labels')}"
    )
    autoscaling = pipelines.inputs.get("autoscaling") or {}
    assert autoscaling.get("totalMinNodeCount") == 0, f"{pipelines.urn}: autoscaling {autoscaling}"
    assert autoscaling.get("totalMaxNodeCount", 0) >= 1, (
        f"{pipelines.urn}: autoscaling {autoscaling}"
    )
    # Spot capacity comes and goes per zone; the autoscaler may use any zone that has some.
    assert autoscaling.get("locationPolicy") == "ANY", f"{pipelines.urn}: autoscaling {autoscaling}"
    assert pipelines.inputs.get("initialNodeCount") == 0, f"{pipelines.urn}: starts with nodes"


def check_default_pool_removed(run: ProgramRun) -> None:
    cluster = run.one(CLUSTER)
    assert cluster.inputs.get("removeDefaultNodePool") is True, f"{cluster.urn}: default pool kept"


def check_buckets_locked_down(run: ProgramRun) -> None:
    buckets = run.of_type(BUCKET)
    assert len(buckets) == 6, f"expected 6 buckets, found {[b.name for b in buckets]}"
    for b in buckets:
        assert b.inputs.get("uniformBucketLevelAccess") is True, f"{b.urn}: object ACLs allowed"
        assert b.inputs.get("publicAccessPrevention") == "enforced", (
            f"{b.urn}: public access not prevented"
        )
        labels = b.inputs.get("labels") or {}
        assert {"app", "stack", "managed-by", "purpose"} <= set(labels), f"{b.urn}: labels {labels}"


def check_scratch_expiry(run: ProgramRun, days: int) -> None:
    for purpose in SCRATCH_BUCKETS:
        b = bucket(run, purpose)
        rules = b.inputs.get("lifecycleRules") or []
        deletes = [
            r
            for r in rules
            if dig(r, "action", "type") == "Delete" and dig(r, "condition", "age") == days
        ]
        assert deletes, f"{b.urn}: no rule deleting objects after {days} days: {rules}"


def check_raw_versioned(run: ProgramRun) -> None:
    raw = bucket(run, "raw")
    assert dig(raw.inputs, "versioning", "enabled") is True, f"{raw.urn}: versioning off"


def iam_resources(run: ProgramRun) -> list[Registered]:
    found = [r for r in run.resources if r.type in IAM_TYPES]
    assert found, "no IAM resources registered"
    return found


def check_no_primitive_roles(run: ProgramRun) -> None:
    for r in iam_resources(run):
        assert r.inputs["role"] not in PRIMITIVE_ROLES, (
            f"{r.urn}: primitive role {r.inputs['role']}"
        )


def check_storage_roles_on_buckets(run: ProgramRun) -> None:
    bucket_names = {b.inputs["name"] for b in run.of_type(BUCKET)}
    for r in iam_resources(run):
        if r.inputs["role"].startswith("roles/storage."):
            assert r.type == BUCKET_IAM, (
                f"{r.urn}: storage role {r.inputs['role']} granted on {r.type}"
            )
            assert r.inputs["bucket"] in bucket_names, (
                f"{r.urn}: bound on unknown bucket {r.inputs['bucket']}"
            )


def check_pipeline_runner_binding(run: ProgramRun) -> None:
    pipeline_email = account_email(run, "pipeline")
    member = f"serviceAccount:{GCP_PROJECT}.svc.id.goog[kubeflow/pipeline-runner]"
    bindings = [
        r
        for r in run.of_type(ACCOUNT_IAM)
        if r.inputs["role"] == "roles/iam.workloadIdentityUser" and r.inputs["member"] == member
    ]
    assert len(bindings) == 1, (
        f"expected one Workload Identity binding for {member}, found {len(bindings)}"
    )
    target = bindings[0].inputs["serviceAccountId"]
    assert target == f"projects/{GCP_PROJECT}/serviceAccounts/{pipeline_email}", (
        f"{bindings[0].urn}: bound to {target}"
    )


def check_kfp_directories(run: ProgramRun, version: str) -> None:
    directories = {d.name: d for d in run.of_type(DIRECTORY)}
    assert len(directories) == 2, f"expected two kustomize directories, found {list(directories)}"
    by_path = {d.inputs["directory"]: d for d in directories.values()}
    cluster_scoped = by_path.get(f"{KFP_MANIFESTS}/cluster-scoped-resources?ref={version}")
    platform = by_path.get(f"{KFP_MANIFESTS}/env/platform-agnostic?ref={version}")
    assert cluster_scoped is not None and platform is not None, (
        f"directories not pinned to {version}: {list(by_path)}"
    )
    assert cluster_scoped.urn in platform.dependencies, (
        f"{platform.urn} does not depend on {cluster_scoped.urn}"
    )


def check_webhook_firewall(run: ProgramRun) -> None:
    master_cidr = dig(run.one(CLUSTER).inputs, "privateClusterConfig", "masterIpv4CidrBlock")
    node_tags = {tag for p in node_pools(run) for tag in p.inputs["nodeConfig"]["tags"]}
    rules = [
        f
        for f in run.of_type(FIREWALL)
        if f.inputs.get("direction") == "INGRESS"
        and f.inputs.get("sourceRanges") == [master_cidr]
        and any(
            a.get("protocol") == "tcp" and "8443" in (a.get("ports") or [])
            for a in f.inputs.get("allows", [])
        )
    ]
    assert len(rules) == 1, (
        f"expected one rule from the control plane {master_cidr} to tcp 8443, found {len(rules)}"
    )
    targets = set(rules[0].inputs.get("targetTags") or [])
    assert targets and targets <= node_tags, (
        f"{rules[0].urn}: targets {targets}, node tags {node_tags}"
    )


def check_no_keys(run: ProgramRun) -> None:
    assert not run.of_type(KEY), (
        f"keys created without being asked: {[k.urn for k in run.of_type(KEY)]}"
    )
    assert not run.of_type(K8S_SECRET), "a Kubernetes Secret exists without keys being asked for"
    assert "service_account_keys" not in run.outputs, (
        "a key output exists without keys being asked for"
    )


def check_protection(run: ProgramRun, protect: bool) -> None:
    cluster = run.one(CLUSTER)
    assert cluster.inputs.get("deletionProtection") is protect, (
        f"{cluster.urn}: deletionProtection != {protect}"
    )
    for purpose in DATA_BUCKETS:
        b = bucket(run, purpose)
        assert b.inputs.get("forceDestroy") is (not protect), (
            f"{b.urn}: forceDestroy != {not protect}"
        )
        assert b.retain_on_delete is protect, f"{b.urn}: retainOnDelete != {protect}"
    for purpose in SCRATCH_BUCKETS:
        b = bucket(run, purpose)
        assert b.inputs.get("forceDestroy") is True, f"{b.urn}: scratch bucket not force-destroyed"
        assert b.retain_on_delete is False, f"{b.urn}: scratch bucket retained"


def protect_governed(run: ProgramRun) -> list[Registered]:
    """The resources the ``protect`` setting governs: cluster, node pools, every bucket."""
    return [run.one(CLUSTER), *node_pools(run), *run.of_type(BUCKET)]


def check_pulumi_protect(run: ProgramRun, protect: bool) -> None:
    """Pulumi's ``protect`` option: on exactly the cluster, its pools and the data buckets
    when the stack is protected, on nothing otherwise. The governed resources always pass it
    explicitly, so turning the setting off lifts the protection at the next ``pulumi up``."""
    expected: set[str] = set()
    if protect:
        expected = {run.one(CLUSTER).urn, *(p.urn for p in node_pools(run))}
        expected |= {bucket(run, purpose).urn for purpose in DATA_BUCKETS}
    protected = {r.urn for r in run.resources if r.protect}
    assert protected == expected, (
        f"Pulumi-protected: {sorted(protected)}, expected {sorted(expected)}"
    )
    for r in protect_governed(run):
        assert r.protect is not None, (
            f"{r.urn}: protect left unset; turning the setting off would not lift it"
        )


def check_open_endpoint_warning(run: ProgramRun) -> None:
    """Exactly one warning for an IP endpoint open to any address, naming the setting and
    both ways to close it."""
    found = [w for w in run.warnings if "controlPlaneOpenToAnyAddress" in w]
    assert len(found) == 1, (
        f"expected one warning about controlPlaneOpenToAnyAddress, got {run.warnings}"
    )
    for fix in (
        "pulumi config set controlPlaneOpenToAnyAddress false",
        "pulumi config set --path 'masterAuthorizedNetworks[0]' <your-ip>/32",
    ):
        assert fix in found[0], found[0]


def check_closed_control_plane(run: ProgramRun) -> None:
    """No IP range reaches the control plane: the public IP endpoint is off, authorised
    networks are on with no range (and not every Google Cloud address), and the
    IAM-authorised DNS endpoint takes external traffic."""
    cluster = run.one(CLUSTER)
    assert dig(cluster.inputs, "privateClusterConfig", "enablePrivateEndpoint") is True, (
        f"{cluster.urn}: the public IP endpoint is on"
    )
    networks = dig(cluster.inputs, "masterAuthorizedNetworksConfig")
    assert networks is not None, f"{cluster.urn}: authorised networks off (any address)"
    assert not networks.get("cidrBlocks"), f"{cluster.urn}: ranges {networks.get('cidrBlocks')}"
    assert networks.get("gcpPublicCidrsAccessEnabled") is False, (
        f"{cluster.urn}: every Google Cloud address may reach the control plane"
    )
    dns = dig(cluster.inputs, "controlPlaneEndpointsConfig", "dnsEndpointConfig", default={})
    assert dns.get("allowExternalTraffic") is True, f"{cluster.urn}: no DNS endpoint: {dns}"


# Everything the model server's Google account may do, and nothing more: read the models
# bucket. No registry access: GKE nodes pull the server's image as the node account,
# Vertex AI as its service agent.
SERVING_GRANTS = {
    (BUCKET_IAM, "models", "roles/storage.objectViewer"),
}


def check_serving_account_grants(run: ProgramRun) -> None:
    """The serving account holds exactly SERVING_GRANTS: no project-level role of any
    kind (nor folder or organisation), no other bucket, no other role."""
    member = f"serviceAccount:{account_email(run, 'serving')}"
    names = {b.inputs["name"]: dig(b.inputs, "labels", "purpose") for b in run.of_type(BUCKET)}
    held = set()
    for r in run.resources:
        if not (r.type.startswith("gcp:") and "member" in r.inputs):
            continue
        if r.inputs["member"] != member:
            continue
        assert not r.type.startswith(("gcp:projects/", "gcp:folder/", "gcp:organizations/")), (
            f"{r.urn}: project-level role {r.inputs['role']} for the serving account"
        )
        where = names.get(r.inputs.get("bucket"), "repository" if r.type == REPOSITORY_IAM else "?")
        held.add((r.type, where, r.inputs["role"]))
    assert held == SERVING_GRANTS, (
        f"serving account grants {sorted(held)}, expected {sorted(SERVING_GRANTS)}"
    )


# (API group, resource, verb) the deploy step may use in the serving namespace, spelled
# out one by one.
_MANAGE = ("get", "list", "watch", "create", "update", "patch", "delete")
_READ = ("get", "list", "watch")
SERVING_PERMISSIONS = (
    {("apps", "deployments", v) for v in _MANAGE}
    | {("", "services", v) for v in _MANAGE}
    | {("", "configmaps", v) for v in _MANAGE}
    | {("autoscaling", "horizontalpodautoscalers", v) for v in _MANAGE}
    | {("policy", "poddisruptionbudgets", v) for v in _MANAGE}
    | {("", "pods", v) for v in _READ}
    | {("", "events", v) for v in _READ}
)


def check_serving_role(run: ProgramRun) -> None:
    """The one Role is in ``serving`` and allows exactly SERVING_PERMISSIONS."""
    role = run.one(ROLE)
    assert dig(role.inputs, "metadata", "namespace") == "serving", (
        f"{role.urn}: namespace {dig(role.inputs, 'metadata', 'namespace')}"
    )
    granted = set()
    for rule in role.inputs["rules"]:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), (
            f"{role.urn}: rule {rule}"
        )
        granted |= {
            (group, resource, verb)
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
    assert granted == SERVING_PERMISSIONS, (
        f"{role.urn}: extra {sorted(granted - SERVING_PERMISSIONS)}, "
        f"missing {sorted(SERVING_PERMISSIONS - granted)}"
    )
