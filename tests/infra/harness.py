"""Runs the real ``infra/`` program under Pulumi mocks and records what it registers.

No Pulumi CLI, no provider plugins: ``pulumi.runtime.set_mocks`` replaces the engine. The
mocks' ``new_resource`` records every resource's type, name and inputs; a recording monitor
adds the options the engine would see (parent, dependencies, provider, protect, retain-on-delete),
and a logger keeps the warnings the program sends to the engine.
Each ``run_program`` call is a fresh, complete run of ``infra/__main__.py`` with the given
config, so one process can compare several stacks (default, protect, keys, ...).
"""

from __future__ import annotations

import base64
import json
import logging
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = PROJECT_ROOT / "infra"
PULUMI_PROJECT = "crypto-kfp"
STACK = "dev"
GCP_PROJECT = "demo-project-123"
GCP_PROJECT_NUMBER = "123456789012"
FAKE_CA = base64.b64encode(b"fake-ca").decode()
DNS_ENDPOINT = "gke-0123456789abcdef0123456789abcdef-123456789012.us-central1-a.gke.goog"
VERTEX_ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
ENDPOINT_ID = "4242424242"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
SERVICE_IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
# The one provider call the program may make: the project number for a budget's filter.
GET_PROJECT = "gcp:organizations/getProject:getProject"


@dataclass
class Registered:
    """One resource as the engine would have seen it."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    custom: bool
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    provider: str = ""
    providers: dict[str, str] = field(default_factory=dict)
    retain_on_delete: bool = False
    # None when the option was left unset, so a test can tell an explicit false from none.
    protect: bool | None = None
    ignore_changes: list[str] = field(default_factory=list)


class RecordingMocks(pulumi.runtime.Mocks):
    """Returns the inputs as outputs, plus the few computed outputs the program reads."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "gcp:serviceaccount/account:Account":
            email = f"{args.inputs['accountId']}@{GCP_PROJECT}.iam.gserviceaccount.com"
            state.update(email=email, name=f"projects/{GCP_PROJECT}/serviceAccounts/{email}")
        elif args.typ == "gcp:container/cluster:Cluster":
            endpoints = args.inputs.get("controlPlaneEndpointsConfig", {})
            dns = {**endpoints.get("dnsEndpointConfig", {}), "endpoint": DNS_ENDPOINT}
            state.update(
                endpoint="203.0.113.10",
                masterAuth={**args.inputs.get("masterAuth", {}), "clusterCaCertificate": FAKE_CA},
                controlPlaneEndpointsConfig={**endpoints, "dnsEndpointConfig": dns},
            )
            location, name = args.inputs["location"], args.inputs["name"]
            resource_id = f"projects/{GCP_PROJECT}/locations/{location}/clusters/{name}"
        elif args.typ == "gcp:serviceaccount/key:Key":
            key_file = {
                "type": "service_account",
                "client_email": "fake@example.com",
                "private_key": "FAKE",
            }
            state["privateKey"] = base64.b64encode(json.dumps(key_file).encode()).decode()
        elif args.typ == "gcp:artifactregistry/repository:Repository":
            state["name"] = args.inputs["repositoryId"]
        elif args.typ == CUSTOM_ROLE:
            state["name"] = f"projects/{args.inputs['project']}/roles/{args.inputs['roleId']}"
        elif args.typ == SERVICE_IDENTITY:
            # Google's service agents are named after the project number and the service.
            agent = args.inputs["service"].split(".")[0]
            email = f"service-{GCP_PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
            state.update(email=email, member=f"serviceAccount:{email}")
        elif args.typ == VERTEX_ENDPOINT:
            # Vertex AI assigns the numeric id; the provider's id is the resource name.
            state["name"] = ENDPOINT_ID
            location = args.inputs["location"]
            resource_id = f"projects/{GCP_PROJECT}/locations/{location}/endpoints/{ENDPOINT_ID}"
        return resource_id, state

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token == GET_PROJECT:
            return {"projectId": args.args["projectId"], "number": GCP_PROJECT_NUMBER}
        raise AssertionError(f"the program made an unexpected provider call: {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping the resource options of each registration."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    custom=request.custom,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    providers=dict(request.providers),
                    retain_on_delete=request.retainOnDelete,
                    protect=request.protect if request.HasField("protect") else None,
                    ignore_changes=list(request.ignoreChanges),
                )
            )
        return response


@dataclass
class ProgramRun:
    """Everything one run of the program registered and exported."""

    resources: list[Registered]
    outputs: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    # (token, arguments) of every provider function the program called.
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        assert len(found) == 1, (
            f"expected one {type_token} named {name!r}, found {[r.name for r in found]}"
        )
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)


def stack_config(**overrides: Any) -> dict[str, str]:
    """Stack config as the CLI passes it: namespaced keys, string values."""
    config = {"gcp:project": GCP_PROJECT}
    for key, value in overrides.items():
        full_key = key if ":" in key else f"{PULUMI_PROJECT}:{key}"
        if value is None:
            config.pop(full_key, None)
        elif isinstance(value, bool):
            config[full_key] = "true" if value else "false"
        elif isinstance(value, list | dict):
            config[full_key] = json.dumps(value)
        else:
            config[full_key] = str(value)
    return config


# The monitor of the latest run, so a test can look at what a failed run registered.
last_monitor: RecordingMonitor | None = None


class _WarningRecorder(logging.Handler):
    """Keeps the messages the mock engine receives at warning severity (``pulumi.log.warn``)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.messages.append(record.getMessage())


def run_program(config: dict[str, str], *, preview: bool = False) -> ProgramRun:
    """Run ``infra/__main__.py`` once under fresh mocks; raise what the program raises."""
    global last_monitor
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config)
    mocks = RecordingMocks()
    monitor = last_monitor = RecordingMonitor(mocks)
    recorder = _WarningRecorder()
    logger = logging.getLogger(f"{__name__}.engine")
    logger.propagate = False
    logger.handlers = [recorder]
    pulumi.runtime.set_mocks(
        mocks, project=PULUMI_PROJECT, stack=STACK, preview=preview, logger=logger, monitor=monitor
    )
    stack = pulumi_settings.get_root_resource()
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(INFRA_DIR), run_name="__main__")))
    return ProgramRun(
        resources=monitor.registered,
        outputs=dict(stack.outputs),
        warnings=recorder.messages,
        calls=mocks.calls,
    )


SECRET_SIG = (pulumi.runtime.rpc._special_sig_key, pulumi.runtime.rpc._special_secret_sig)


def is_secret(value: Any) -> bool:
    """True for an input the engine would receive marked secret."""
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def unwrap(value: Any) -> Any:
    """The plain value of a (possibly secret) input."""
    return value["value"] if is_secret(value) else value


def dig(inputs: dict[str, Any], *path: str, default: Any = None) -> Any:
    """A nested input by path, e.g.
    ``dig(cluster.inputs, "privateClusterConfig", "enablePrivateNodes")``."""
    value: Any = inputs
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return default
        value = unwrap(value[key])
    return value
