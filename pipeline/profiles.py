"""Pipeline arguments per backend profile.

The local profile is the pipeline's own defaults plus directories under ``--root`` (see
``python -m pipeline run-local``). The gcp profile is filled from the Pulumi stack
outputs (``pulumi stack output --json``): where the data lake and the model repository
are, which registry holds the step images and where KFP keeps artifacts.

Secret outputs (the kubeconfig, service-account keys) are dropped on load: nothing here
needs them, and what is never held cannot be printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from components.common.placement import PIPELINES_LABEL, PIPELINES_TAINT

#: Stack outputs the cloud submit path reads, with what each is for.
REQUIRED_OUTPUTS = {
    "registry_url": "Artifact Registry prefix of the step images",
    "raw_bucket": "data lake (gs:// URI)",
    "models_bucket": "model repository (gs:// URI)",
    "pipeline_root": "where KFP writes the run's artifacts (gs:// URI)",
}
#: Outputs that are Pulumi secrets; never kept, never printed.
SECRET_OUTPUTS = ("kubeconfig", "service_account_keys")

PULUMI_INSTALL = "https://www.pulumi.com/docs/install/"


class StackOutputsError(RuntimeError):
    """The stack outputs are missing, unreadable or incomplete."""


def _fix_hint(stack: str | None = None) -> str:
    which = (
        f"stack {stack!r}" if stack else "the right stack (--stack NAME or `pulumi stack select`)"
    )
    return (
        f"Run `pulumi up` for {which}, or pass --stack-outputs FILE written by "
        "`pulumi stack output --json > FILE`."
    )


def _missing(outputs: dict[str, Any], keys) -> list[str]:
    return [key for key in keys if outputs.get(key) in (None, "")]


def validate_stack_outputs(outputs: dict[str, Any]) -> None:
    """Every output the submit path needs is there and well-formed; the pipelines-pool
    placement the stack reports is the one the pipeline is compiled with."""
    missing = _missing(outputs, REQUIRED_OUTPUTS)
    if missing:
        named = "; ".join(f"{key} ({REQUIRED_OUTPUTS[key]})" for key in missing)
        raise StackOutputsError(f"stack outputs lack {named}. {_fix_hint()}")
    for key in ("raw_bucket", "models_bucket", "pipeline_root"):
        if not str(outputs[key]).startswith("gs://"):
            raise StackOutputsError(
                f"stack output {key} should be a gs:// URI, got {outputs[key]!r}. {_fix_hint()}"
            )
    selector = outputs.get("pipelines_node_selector")
    if selector is not None and selector != PIPELINES_LABEL:
        raise StackOutputsError(
            f"the stack's pipelines pool has node label {selector}, but the pipeline selects "
            f"{PIPELINES_LABEL} (components/common/placement.py): steps would never be scheduled. "
            "Update the stack (`pulumi up`) or components/common/placement.py so they agree."
        )
    toleration = outputs.get("pipelines_toleration")
    if toleration is not None and (toleration.get("key"), toleration.get("value")) != (
        PIPELINES_TAINT["key"],
        PIPELINES_TAINT["value"],
    ):
        raise StackOutputsError(
            f"the stack's pipelines pool taint {toleration.get('key')}={toleration.get('value')} "
            f"differs from the pipeline's toleration {PIPELINES_TAINT['key']}="
            f"{PIPELINES_TAINT['value']} (components/common/placement.py): steps would never be "
            "scheduled. Update the stack (`pulumi up`) or components/common/placement.py."
        )


#: Stack outputs the cloud backends read (runner=dataflow, tune_backend=vertex).
BACKEND_OUTPUTS = {
    "project": "GCP project of the Dataflow and Vertex AI jobs",
    "region": "their region",
    "dataflow_temp_bucket": "Dataflow temp location (gs:// URI)",
    "dataflow_staging_bucket": "Dataflow staging location (gs:// URI)",
    "dataflow_service_account": "Dataflow worker service account",
    "dataflow_subnetwork": "subnetwork of the private Dataflow workers",
    "vertex_service_account": "service account of the Vertex AI tuning trials",
    "vertex_staging_uri": "staging folder of the Vertex AI tuning job (gs:// URI)",
}
#: Stack outputs of the deploy targets (gke: the serving namespace and its KSA; vertex:
#: the endpoint and the serving Google service account, which the GKE KSA is bound to).
DEPLOY_OUTPUTS = {
    "serving_namespace": "namespace of the model server on GKE",
    "serving_k8s_service_account": "Kubernetes service account of the model server",
    "serving_service_account": "serving Google service account (reads the models bucket)",
    "vertex_endpoint": "display name of the Vertex AI endpoint",
}


def gcp_arguments(stack_outputs: dict[str, Any]) -> dict[str, Any]:
    """Pipeline arguments of the gcp profile, from the stack outputs.

    The heavy steps go to Google's engines: ``runner="dataflow"`` (the transform submits a
    Beam job) and ``tune_backend="vertex"`` (a Vertex AI hyper-parameter tuning job), every
    setting from the stack. ``--runner local`` / ``--tune-backend optuna`` on the command
    line run them inside their pods instead. ``deploy_target="gke"``: the model server
    rolls out in the cluster that already runs the pipeline (no extra machine billed while
    idle); ``--deploy-target vertex`` deploys to the stack's Vertex AI endpoint instead.
    """
    known = {**BACKEND_OUTPUTS, **DEPLOY_OUTPUTS}
    missing = _missing(stack_outputs, ("raw_bucket", "models_bucket", *known))
    if missing:
        named = ", ".join(f"{key} ({known[key]})" if key in known else key for key in missing)
        raise StackOutputsError(f"stack outputs lack {named}. {_fix_hint()}")
    o = {key: str(value).rstrip("/") for key, value in stack_outputs.items() if key != "labels"}
    labels = {**(stack_outputs.get("labels") or {}), "step": "transform"}
    return {
        "lake": o["raw_bucket"],
        "model_repository": o["models_bucket"] + "/repository",
        "runner": "dataflow",
        "dataflow_project": o["project"],
        "dataflow_region": o["region"],
        "dataflow_temp_location": o["dataflow_temp_bucket"] + "/temp",
        "dataflow_staging_location": o["dataflow_staging_bucket"] + "/staging",
        "dataflow_service_account": o["dataflow_service_account"],
        "dataflow_subnetwork": o["dataflow_subnetwork"],
        "dataflow_labels": json.dumps(labels, sort_keys=True),
        "tune_backend": "vertex",
        "vertex_project": o["project"],
        "vertex_region": o["region"],
        "vertex_service_account": o["vertex_service_account"],
        "vertex_staging_bucket": o["vertex_staging_uri"],
        "deploy_target": "gke",
        **{name: o[name] for name in DEPLOY_OUTPUTS},
    }


def cloud_settings(arguments: dict[str, Any]) -> list[str]:
    """The Dataflow and Vertex AI settings a run will use, one line each (for --dry-run)."""
    from pipeline.crypto_pipeline import DEFAULTS

    lines = []
    groups = (
        ("runner", "dataflow", "Dataflow (transform)", "dataflow_"),
        ("tune_backend", "vertex", "Vertex AI (tune)", ("vertex_", "parallel_trials", "n_trials")),
    )
    for key, engine, title, prefixes in groups:
        value = arguments.get(key, DEFAULTS[key])
        if value != engine:
            lines.append(f"{title}: not used ({key}={value!r}: runs inside the step's pod)")
            continue
        lines.append(f"{title}:")
        for name in sorted(DEFAULTS):
            if name.startswith(prefixes):
                lines.append(f"    {name} = {arguments.get(name, DEFAULTS[name])!r}")
    target = arguments.get("deploy_target", DEFAULTS["deploy_target"])
    used = {
        "gke": ("serving_namespace", "serving_k8s_service_account", "serving_min_replicas",
                "serving_max_replicas"),
        "vertex": ("vertex_project", "vertex_region", "vertex_endpoint", "serving_machine_type",
                   "serving_min_replicas", "serving_max_replicas", "serving_service_account"),
    }.get(target)  # fmt: skip
    if used is None:
        lines.append(f"Deploy: {target!r} (no cloud serving)")
    else:
        lines.append(f"Deploy ({'GKE' if target == 'gke' else 'Vertex AI'}):")
        lines.extend(f"    {name} = {arguments.get(name, DEFAULTS[name])!r}" for name in used)
    return lines


def validate_cloud_arguments(arguments: dict[str, Any]) -> None:
    """Refuse arguments that cannot work in a pod: local paths are lost with the pod."""
    for name in ("lake", "model_repository"):
        value = str(arguments.get(name, ""))
        if not value.startswith("gs://"):
            raise StackOutputsError(
                f"{name} must be a gs:// URI on the cluster, got {value!r}: a path inside a "
                "step's pod is lost when the pod ends."
            )
    source = str(arguments.get("source", ""))
    if source and not source.startswith(("https://", "http://", "gs://")):
        raise StackOutputsError(
            f"source must be an https URL or a gs:// URI on the cluster, got {source!r}: the "
            "steps cannot read this machine's files. Upload it first, e.g. "
            "`gcloud storage cp FILE $(pulumi stack output raw_bucket)/uploads/`."
        )
    if arguments.get("deploy_target") == "local":
        raise StackOutputsError(
            "deploy_target 'local' writes the model repository into the deploy step's pod, "
            "where it is lost when the pod ends; it is for kfp.local runs only."
        )


def cloud_warnings(arguments: dict[str, Any]) -> list[str]:
    """What a run will cost beyond the run itself."""
    warnings = []
    if arguments.get("deploy_target") == "vertex":
        warnings.append(
            "deploy target 'vertex': the endpoint's serving replicas (at least "
            f"{arguments.get('serving_min_replicas', 1)}) are billed by the hour until the "
            "next deploy replaces them or `make destroy` (components.deploy teardown) "
            "undeploys them."
        )
    return warnings


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        # The message names the position only, never the content (it may hold secrets).
        raise StackOutputsError(
            f"{origin} is not JSON ({exc.msg} at line {exc.lineno}). {_fix_hint()}"
        ) from None
    if not isinstance(outputs, dict):
        raise StackOutputsError(f"{origin} is not a JSON object of stack outputs. {_fix_hint()}")
    return {key: value for key, value in outputs.items() if key not in SECRET_OUTPUTS}


def load_stack_outputs(path: str | None = None, stack: str | None = None) -> dict[str, Any]:
    """The stack outputs, without secrets: from ``path`` (JSON written by ``pulumi stack
    output --json``; ``-`` is stdin), else from ``pulumi stack output --json [--stack S]``."""
    if path is not None:
        if path == "-":
            return _parse(sys.stdin.read(), "stdin")
        file = Path(path)
        if not file.is_file():
            raise StackOutputsError(f"stack outputs file not found: {path}. {_fix_hint()}")
        return _parse(file.read_text(encoding="utf-8"), str(file))

    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise StackOutputsError(
            f"the Pulumi CLI is not on PATH. Install it ({PULUMI_INSTALL}), or pass "
            "--stack-outputs FILE with the JSON of `pulumi stack output --json` "
            "(run wherever the CLI and the stack are)."
        )
    command = [pulumi, "stack", "output", "--json"]  # never --show-secrets
    if stack:
        command += ["--stack", stack]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise StackOutputsError(
            f"`pulumi stack output --json` did not answer within 120 s. {_fix_hint(stack)}"
        ) from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no message"
        raise StackOutputsError(
            f"`pulumi stack output --json` failed: {detail}. {_fix_hint(stack)}"
        )
    return _parse(proc.stdout, "`pulumi stack output --json`")
