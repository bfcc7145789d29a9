"""Typed, validated stack settings.

Every setting is declared once in ``SCHEMA`` (type, default, description). ``Pulumi.yaml``
declares the same keys for the CLI, and a test keeps the two in step. A missing or invalid
value stops the program before any resource is registered, with one message per problem
naming the key and the ``pulumi config set`` command that fixes it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi


class ConfigError(pulumi.RunError):
    """A stack setting is missing or invalid. Pulumi prints the message without a traceback."""


@dataclass(frozen=True)
class Setting:
    type: str  # "string" | "integer" | "boolean" | "array" (the Pulumi.yaml schema types)
    default: Any
    description: str


SCHEMA: dict[str, Setting] = {
    "region": Setting(
        "string", "us-central1", "Region for the network, buckets, registry and a regional cluster."
    ),
    "zone": Setting(
        "string",
        "us-central1-a",
        "Zone of the cluster when regionalCluster is false; must be in region.",
    ),
    "regionalCluster": Setting(
        "boolean",
        False,
        "Regional control plane and nodes in every zone of the region (about 3x the node cost).",
    ),
    "resourcePrefix": Setting(
        "string",
        "crypto-kfp",
        "Prefix of every resource name (lower case letters, digits, hyphens; 3-20 characters).",
    ),
    "releaseChannel": Setting(
        "string", "REGULAR", "GKE release channel: RAPID, REGULAR, STABLE or EXTENDED."
    ),
    "systemMachineType": Setting(
        "string",
        "e2-standard-2",
        "Machine type of the system pool that runs Kubeflow Pipelines itself.",
    ),
    "systemMinNodes": Setting("integer", 1, "Minimum nodes of the system pool (whole cluster)."),
    "systemMaxNodes": Setting("integer", 3, "Maximum nodes of the system pool (whole cluster)."),
    "pipelinesMachineType": Setting(
        "string", "e2-standard-4", "Machine type of the pipelines pool that runs pipeline steps."
    ),
    "pipelinesMinNodes": Setting(
        "integer", 0, "Minimum nodes of the pipelines pool; 0 means no cost while no step runs."
    ),
    "pipelinesMaxNodes": Setting("integer", 3, "Maximum nodes of the pipelines pool."),
    "pipelinesSpot": Setting(
        "boolean", True, "Run the pipelines pool on Spot VMs (60-90% cheaper, may be reclaimed)."
    ),
    "nodeDiskSizeGb": Setting("integer", 50, "Boot disk size of every node, in GB."),
    "subnetCidr": Setting(
        "string", "10.10.0.0/20", "Primary range of the subnet (node addresses)."
    ),
    "podsCidr": Setting(
        "string", "10.20.0.0/16", "Secondary range of the subnet for pod addresses."
    ),
    "servicesCidr": Setting(
        "string", "10.30.0.0/20", "Secondary range of the subnet for service addresses."
    ),
    "masterCidr": Setting(
        "string",
        "172.16.0.32/28",
        "The /28 range of the GKE control plane (must not overlap the other ranges).",
    ),
    "masterAuthorizedNetworks": Setting(
        "array",
        [],
        "CIDR ranges allowed to reach the control plane's public IP endpoint; empty keeps "
        "the IP endpoint private (kubectl and Pulumi use the IAM-authorised DNS endpoint).",
    ),
    "controlPlaneOpenToAnyAddress": Setting(
        "boolean",
        False,
        "Open the control plane's public IP endpoint to every address on the internet: "
        "anyone can reach the Kubernetes API server (each request still needs Google "
        "credentials). The policy pack then allows it; a warning shows at every preview.",
    ),
    "kfpVersion": Setting(
        "string",
        "2.17.0",
        "Kubeflow Pipelines release to install (a 2.x release tag, e.g. 2.17.0).",
    ),
    "tempObjectTtlDays": Setting(
        "integer",
        7,
        "Days after which objects in the Dataflow temp and staging buckets and the Cloud "
        "Build source bucket are deleted.",
    ),
    "registryKeepVersions": Setting(
        "integer",
        10,
        "Newest image versions per image the Artifact Registry cleanup policy keeps, even "
        "untagged ones.",
    ),
    "registryUntaggedDays": Setting(
        "integer",
        7,
        "Days after which an image version no tag points to is deleted from the Artifact "
        "Registry. Tagged versions (every build tags its images with the commit) are never "
        "deleted.",
    ),
    "protect": Setting(
        "boolean",
        False,
        "Production safety: the cluster, its node pools and the raw, artifacts and models "
        "buckets are Pulumi-protected (pulumi destroy refuses), with GKE deletion protection "
        "and the data buckets retained on delete. To tear down, set it false and run pulumi "
        "up before pulumi destroy.",
    ),
    "serviceAccountKeys": Setting(
        "boolean",
        False,
        "Create service-account keys (secret outputs + Kubernetes Secret); Workload "
        "Identity needs none.",
    ),
    "paused": Setting(
        "boolean",
        False,
        "Take the system pool to zero nodes (KFP stops; its volumes and data stay). "
        "make pause / make resume set it and run pulumi up.",
    ),
    "billingAccount": Setting(
        "string",
        "",
        "Billing account id (XXXXXX-XXXXXX-XXXXXX) of the project; with monthlyBudget, "
        "creates a budget alerting at 50, 90 and 100%. Empty: no budget.",
    ),
    "monthlyBudget": Setting(
        "integer",
        0,
        "Monthly budget in the billing account's currency (whole units); 0: no budget.",
    ),
    "vertexEndpointName": Setting(
        "string",
        "",
        "Display name of the Vertex AI endpoint the deploy step serves on (up to 128 "
        "characters); empty: <resourcePrefix>-forecast.",
    ),
}

RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
# GCP project ids: 6-30 characters, lower case letters, digits and hyphens, starting with
# a letter and not ending with a hyphen.
_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
# The KFP manifests are installed from a git tag; only 2.x has the layout this program uses
# (cluster-scoped-resources + env/platform-agnostic).
_KFP_VERSION = re.compile(r"^2\.\d+\.\d+(-rc\.\d+)?$")
_BILLING_ACCOUNT = re.compile(r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$")
# Vertex AI takes any UTF-8 display name up to 128 characters; control characters would
# only make the name impossible to pass on a command line or in a list filter.
_ENDPOINT_NAME_MAX = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The endpoint's display name when the stack names none: "<resourcePrefix>-forecast".
ENDPOINT_SUFFIX = "forecast"
# Bucket names are "<project>-<prefix>-<suffix>": 30 + 1 + 20 + 1 + len("df-staging") = 62,
# inside GCS's 63-character limit, so the two patterns above keep every name valid.


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    region: str
    zone: str
    regional_cluster: bool
    resource_prefix: str
    release_channel: str
    system_machine_type: str
    system_min_nodes: int
    system_max_nodes: int
    pipelines_machine_type: str
    pipelines_min_nodes: int
    pipelines_max_nodes: int
    pipelines_spot: bool
    node_disk_size_gb: int
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    master_cidr: str
    master_authorized_networks: tuple[str, ...]
    kfp_version: str
    temp_object_ttl_days: int
    registry_keep_versions: int
    registry_untagged_days: int
    protect: bool
    service_account_keys: bool
    control_plane_open_to_any_address: bool = False
    paused: bool = False
    billing_account: str = ""
    monthly_budget: int = 0
    vertex_endpoint_name: str = ""

    @property
    def cluster_location(self) -> str:
        """Where the cluster lives: the region for a regional cluster, else the zone."""
        return self.region if self.regional_cluster else self.zone

    def name(self, suffix: str) -> str:
        """A resource name inside the project: ``<prefix>-<suffix>``."""
        return f"{self.resource_prefix}-{suffix}"

    def bucket_name(self, suffix: str) -> str:
        """A globally unique bucket name: the project id makes it unique."""
        return f"{self.project}-{self.resource_prefix}-{suffix}"

    @property
    def endpoint_display_name(self) -> str:
        """The Vertex AI endpoint's display name: the setting, else ``<prefix>-forecast``."""
        return self.vertex_endpoint_name or self.name(ENDPOINT_SUFFIX)

    @property
    def budget_requested(self) -> bool:
        """A billing budget is created only when both of its settings are given."""
        return bool(self.billing_account and self.monthly_budget)

    @property
    def labels(self) -> dict[str, str]:
        """Labels on every resource that takes them, for cost reports and clean-up."""
        return {
            "app": self.resource_prefix,
            "stack": _label_value(self.stack),
            "managed-by": "pulumi",
        }


def _label_value(value: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


# List settings are set element by element.
_SET_AUTHORIZED_NETWORK = "pulumi config set --path 'masterAuthorizedNetworks[0]' 203.0.113.7/32"


def _set_command(key: str, example: str) -> str:
    return f"pulumi config set {key} {example}"


class _Reader:
    """Reads raw config strings and collects every problem instead of stopping at the first."""

    def __init__(self, config: pulumi.Config) -> None:
        self.config = config
        self.errors: list[str] = []

    def fail(self, key: str, problem: str, example: str, command: str | None = None) -> None:
        self.errors.append(
            f"{key}: {problem}. Fix it with: {command or _set_command(key, example)}"
        )

    def raw(self, key: str) -> str | None:
        return self.config.get(key)

    def string(self, key: str) -> str:
        value = self.raw(key)
        return SCHEMA[key].default if value is None or value == "" else value

    def integer(self, key: str, lowest: int, highest: int) -> int:
        default = SCHEMA[key].default
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(key, f"{value!r} is not a whole number", str(default))
            return default
        if not lowest <= number <= highest:
            self.fail(key, f"{number} is outside {lowest}..{highest}", str(default))
            return default
        return number

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if value is None:
            return SCHEMA[key].default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, f"{value!r} is not true or false", "true")
        return SCHEMA[key].default

    def string_list(self, key: str) -> list[str]:
        value = self.raw(key)
        if value is None or value == "":
            return list(SCHEMA[key].default)
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            self.fail(key, f"{value!r} is not a list of strings", "", _SET_AUTHORIZED_NETWORK)
            return list(SCHEMA[key].default)
        return items

    def cidr(self, key: str) -> str:
        value = self.string(key)
        try:
            return str(ipaddress.IPv4Network(value, strict=True))
        except ValueError:
            self.fail(
                key, f"{value!r} is not an IPv4 network in CIDR form", str(SCHEMA[key].default)
            )
            return SCHEMA[key].default


def load_settings() -> Settings:
    """Read and validate every setting; raise ConfigError listing all problems."""
    r = _Reader(pulumi.Config())
    gcp = pulumi.Config("gcp")

    project = gcp.get("project") or ""
    if not project:
        r.errors.append(
            "gcp:project: missing; it is the id of the Google Cloud project to deploy into. "
            f"Set it with: {_set_command('gcp:project', '<your-project-id>')}"
        )
    elif not _PROJECT_ID.match(project):
        r.errors.append(
            f"gcp:project: {project!r} is not a valid project id (6-30 lower case letters, "
            f"digits, hyphens). Fix it with: {_set_command('gcp:project', '<your-project-id>')}"
        )

    region = r.string("region")
    if not _REGION.match(region):
        r.fail("region", f"{region!r} is not a region name like us-central1", "us-central1")
    zone = r.string("zone")
    if not zone.startswith(f"{region}-"):
        r.fail("zone", f"{zone!r} is not a zone of region {region!r}", f"{region}-a")

    prefix = r.string("resourcePrefix")
    if not _PREFIX.match(prefix):
        r.fail(
            "resourcePrefix",
            f"{prefix!r} must be 3-20 lower case letters, digits or hyphens, "
            "starting with a letter",
            "crypto-kfp",
        )

    channel = r.string("releaseChannel").upper()
    if channel not in RELEASE_CHANNELS:
        r.fail(
            "releaseChannel", f"{channel!r} is not one of {', '.join(RELEASE_CHANNELS)}", "REGULAR"
        )

    system_min = r.integer("systemMinNodes", 1, 100)
    system_max = r.integer("systemMaxNodes", 1, 100)
    if system_min > system_max:
        r.fail(
            "systemMinNodes",
            f"min {system_min} is greater than systemMaxNodes {system_max}",
            str(system_max),
        )
    pipelines_min = r.integer("pipelinesMinNodes", 0, 100)
    pipelines_max = r.integer("pipelinesMaxNodes", 1, 100)
    if pipelines_min > pipelines_max:
        r.fail(
            "pipelinesMinNodes",
            f"min {pipelines_min} is greater than pipelinesMaxNodes {pipelines_max}",
            str(pipelines_max),
        )

    kfp_version = r.string("kfpVersion")
    if not _KFP_VERSION.match(kfp_version):
        r.fail(
            "kfpVersion",
            f"{kfp_version!r} is not a Kubeflow Pipelines 2.x release tag such as 2.17.0",
            "2.17.0",
        )

    ranges = {key: r.cidr(key) for key in ("subnetCidr", "podsCidr", "servicesCidr", "masterCidr")}
    if ipaddress.IPv4Network(ranges["masterCidr"]).prefixlen != 28:
        r.fail(
            "masterCidr",
            f"{ranges['masterCidr']!r} must be a /28 range (a GKE requirement)",
            "172.16.0.32/28",
        )
    networks = {key: ipaddress.IPv4Network(value) for key, value in ranges.items()}
    keys = list(networks)
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            if networks[first].overlaps(networks[second]):
                r.fail(
                    second,
                    f"{ranges[second]} overlaps {first} {ranges[first]}",
                    str(SCHEMA[second].default),
                )

    authorized = []
    for cidr in r.string_list("masterAuthorizedNetworks"):
        try:
            authorized.append(str(ipaddress.IPv4Network(cidr, strict=False)))
        except ValueError:
            r.fail(
                "masterAuthorizedNetworks",
                f"{cidr!r} is not a CIDR range",
                "",
                _SET_AUTHORIZED_NETWORK,
            )

    open_to_any = r.boolean("controlPlaneOpenToAnyAddress")
    if open_to_any and authorized:
        r.fail(
            "controlPlaneOpenToAnyAddress",
            "true contradicts masterAuthorizedNetworks, which restricts the endpoint",
            "false",
        )

    billing_account = r.string("billingAccount").upper()
    if billing_account and not _BILLING_ACCOUNT.match(billing_account):
        r.fail(
            "billingAccount",
            f"{billing_account!r} is not a billing account id like 012345-6789AB-CDEF01",
            "012345-6789AB-CDEF01",
        )
    monthly_budget = r.integer("monthlyBudget", 0, 10_000_000)
    if bool(billing_account) != bool(monthly_budget):
        missing = "monthlyBudget" if billing_account else "billingAccount"
        r.fail(
            missing,
            "a budget needs both billingAccount and monthlyBudget; only one is set",
            "100" if missing == "monthlyBudget" else "012345-6789AB-CDEF01",
        )

    endpoint_name = r.string("vertexEndpointName")
    if len(endpoint_name) > _ENDPOINT_NAME_MAX or _CONTROL.search(endpoint_name):
        r.fail(
            "vertexEndpointName",
            f"{endpoint_name!r} must be at most {_ENDPOINT_NAME_MAX} characters without "
            "control characters",
            "btc-forecast",
        )
        endpoint_name = ""

    settings = Settings(
        project=project,
        stack=pulumi.get_stack(),
        region=region,
        zone=zone,
        regional_cluster=r.boolean("regionalCluster"),
        resource_prefix=prefix,
        release_channel=channel,
        system_machine_type=r.string("systemMachineType"),
        system_min_nodes=system_min,
        system_max_nodes=system_max,
        pipelines_machine_type=r.string("pipelinesMachineType"),
        pipelines_min_nodes=pipelines_min,
        pipelines_max_nodes=pipelines_max,
        pipelines_spot=r.boolean("pipelinesSpot"),
        node_disk_size_gb=r.integer("nodeDiskSizeGb", 20, 2000),
        subnet_cidr=ranges["subnetCidr"],
        pods_cidr=ranges["podsCidr"],
        services_cidr=ranges["servicesCidr"],
        master_cidr=ranges["masterCidr"],
        master_authorized_networks=tuple(authorized),
        kfp_version=kfp_version,
        temp_object_ttl_days=r.integer("tempObjectTtlDays", 1, 365),
        registry_keep_versions=r.integer("registryKeepVersions", 1, 1000),
        registry_untagged_days=r.integer("registryUntaggedDays", 1, 3650),
        protect=r.boolean("protect"),
        service_account_keys=r.boolean("serviceAccountKeys"),
        control_plane_open_to_any_address=open_to_any,
        paused=r.boolean("paused"),
        billing_account=billing_account,
        monthly_budget=monthly_budget,
        vertex_endpoint_name=endpoint_name,
    )
    if r.errors:
        raise ConfigError("Invalid stack configuration:\n  - " + "\n  - ".join(r.errors))
    return settings
