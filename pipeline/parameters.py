"""The pipeline's parameters without the pipeline: names, types, help, the step parameters
they feed, and ``check_arguments``, which checks a run's arguments with each step's own
``check_parameters`` before anything runs. Loads neither kfp nor any step's heavy code, so
a usage error is reported in about a second (``tests/pipeline/test_preflight.py`` proves
that these names and types are the compiled pipeline's).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from components.common.quantiles import DEFAULT_GATE_METRIC, DEFAULT_QUANTILE_LEVELS

#: The settings of deploy_target=vertex and gke (issue 10), each a parameter of deploy.run
#: of the same name; vertex also uses the tune step's vertex_project and vertex_region.
DEPLOY_SETTINGS = (
    "vertex_endpoint",
    "serving_machine_type",
    "serving_min_replicas",
    "serving_max_replicas",
    "serving_service_account",
    "serving_namespace",
    "serving_k8s_service_account",
)

#: Every pipeline parameter and its type, in the pipeline function's order.
PARAMETER_TYPES: dict[str, type] = {
    "lake": str,
    "model_repository": str,
    "source": str,
    "source_sha256": str,
    "column_mapping": str,
    "coins": str,
    "split": str,
    "max_rejected_fraction": float,
    "runner": str,
    "dataflow_project": str,
    "dataflow_region": str,
    "dataflow_temp_location": str,
    "dataflow_staging_location": str,
    "dataflow_service_account": str,
    "dataflow_subnetwork": str,
    "dataflow_machine_type": str,
    "dataflow_max_workers": int,
    "dataflow_private_ips": bool,
    "dataflow_labels": str,
    "tune_backend": str,
    "parallel_trials": int,
    "vertex_project": str,
    "vertex_region": str,
    "vertex_service_account": str,
    "vertex_staging_bucket": str,
    "vertex_machine_type": str,
    "n_trials": int,
    "tune_timeout_s": int,
    "tune_max_epochs": int,
    "epochs": int,
    "seed": int,
    "max_mae_ratio": float,
    "min_improvement": float,
    "significance": float,
    "quantile_levels": str,
    "gate_metric": str,
    "coverage_tolerance": float,
    "model_name": str,
    "deploy_target": str,
    **{name: (int if name.endswith("_replicas") else str) for name in DEPLOY_SETTINGS},
}

#: Pipeline parameter -> the (step, parameter of its ``run``) it feeds; the first one
#: gives the default.
PARAMETER_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "source": (("ingest", "source"),),
    "source_sha256": (("ingest", "expected_sha256"),),
    "column_mapping": (("ingest", "column_mapping"), ("transform", "column_mapping")),
    "coins": (("transform", "coins"),),
    "split": (("transform", "split"),),
    "max_rejected_fraction": (("transform", "max_rejected_fraction"),),
    "runner": (("transform", "runner"),),
    **{
        f"dataflow_{name}": (("dataflow", option),)
        for name, option in (
            ("project", "project"),
            ("region", "region"),
            ("temp_location", "temp_location"),
            ("staging_location", "staging_location"),
            ("service_account", "service_account_email"),
            ("subnetwork", "subnetwork"),
            ("machine_type", "machine_type"),
            ("max_workers", "max_num_workers"),
            ("private_ips", "no_use_public_ips"),
            ("labels", "labels"),
        )
    },
    "tune_backend": (("tune", "backend"),),
    "parallel_trials": (("tune", "parallel_trials"),),
    **{
        name: (("tune", name),)
        for name in (
            "vertex_project",
            "vertex_region",
            "vertex_service_account",
            "vertex_staging_bucket",
            "vertex_machine_type",
        )
    },
    "n_trials": (("tune", "n_trials"),),
    "tune_timeout_s": (("tune", "timeout_s"),),
    "tune_max_epochs": (("tune", "max_epochs"),),
    "epochs": (("train", "epochs"),),
    "seed": (("tune", "seed"), ("train", "seed")),
    "max_mae_ratio": (("train", "max_mae_ratio"),),
    "min_improvement": (("train", "min_improvement"),),
    "significance": (("train", "significance"),),
    "quantile_levels": (("tune", "quantile_levels"), ("train", "quantile_levels")),
    "gate_metric": (("train", "gate_metric"),),
    "coverage_tolerance": (("train", "coverage_tolerance"),),
    "model_name": (("train", "model_name"), ("deploy", "model_name")),
    "deploy_target": (("deploy", "target"),),
    **{name: (("deploy", name),) for name in DEPLOY_SETTINGS},
}
for _shared in ("vertex_project", "vertex_region"):  # deploy_target=vertex shares tune's
    PARAMETER_SOURCES[_shared] += (("deploy", _shared),)
#: The deploy target's settings train reads to find the champion (what it serves now).
CHAMPION_SETTINGS = ("serving_namespace", "vertex_project", "vertex_region", "vertex_endpoint")
for _shared in CHAMPION_SETTINGS:
    PARAMETER_SOURCES[_shared] += (("train", _shared),)
#: Parameters without a step default (the profile gives them), and the step they feed.
PROFILE_PARAMETERS: dict[str, tuple[tuple[str, str], ...]] = {
    "lake": (("ingest", "lake"),),
    "model_repository": (("deploy", "model_repository"),),
}

#: One line per pipeline parameter, for ``--help`` and the README.
PARAMETER_HELP = {
    "lake": "data lake for the raw CSV: a local directory or gs://bucket/prefix",
    "model_repository": "where deploy publishes models (TF-Serving layout)",
    "source": "raw CSV: local path, https URL or gs:// URI",
    "source_sha256": "expected SHA-256 of the source; empty: the pinned one for the default "
    "source, none for others",
    "column_mapping": 'JSON {canonical: your_column}, e.g. {"date": "Date", "slug": "Name"}',
    "coins": "coin slugs to model, comma-separated, or 'all'",
    "split": "train,eval,test fractions of each coin's dates, in time order",
    "max_rejected_fraction": "fail the transform when more of the rows are rejected",
    "runner": "Beam runner of the transform: local (in-process) or dataflow",
    "dataflow_project": "runner=dataflow: the GCP project of the job",
    "dataflow_region": "runner=dataflow: the job's region",
    "dataflow_temp_location": "runner=dataflow: gs:// temp location",
    "dataflow_staging_location": "runner=dataflow: gs:// staging location",
    "dataflow_service_account": "runner=dataflow: the workers' service account",
    "dataflow_subnetwork": "runner=dataflow: regions/REGION/subnetworks/NAME",
    "dataflow_machine_type": "runner=dataflow: worker machine type (empty: Dataflow's)",
    "dataflow_max_workers": "runner=dataflow: autoscaling limit",
    "dataflow_private_ips": "runner=dataflow: workers without public IPs",
    "dataflow_labels": 'runner=dataflow: job labels, JSON {"key": "value"}',
    "tune_backend": "hyper-parameter search backend: optuna (in the pod) or vertex",
    "n_trials": "hyper-parameter trials",
    "parallel_trials": "tune_backend=vertex: trials running at once",
    "vertex_project": "tune_backend=vertex, deploy_target=vertex: the GCP project",
    "vertex_region": "tune_backend=vertex, deploy_target=vertex: the Vertex AI region",
    "vertex_service_account": "tune_backend=vertex: the trials' service account",
    "vertex_staging_bucket": "tune_backend=vertex: gs:// staging folder of the job",
    "vertex_machine_type": "tune_backend=vertex: machine type of each trial",
    "tune_timeout_s": "time budget of the search, seconds",
    "tune_max_epochs": "epochs per trial (with pruning and early stopping)",
    "epochs": "maximum epochs of the final training (early stopping on eval)",
    "seed": "random seed of search and training",
    "max_mae_ratio": "gate_metric=mae: deploy only if model MAE / persistence MAE is at most this",
    "min_improvement": "deploy only if the model's loss (pinball or MAE) is this fraction below "
    "the champion's",
    "significance": "and the Diebold-Mariano p-values (against the champion and, with "
    "gate_metric=pinball, the historical quantiles) are below this",
    "quantile_levels": "quantile levels of tomorrow's log return the model forecasts, "
    "comma-separated: increasing, strictly between 0 and 1, with 0.5 (the point forecast), "
    "at most 19; tune selects on their mean pinball loss",
    "gate_metric": "pinball: deploy only if the pinball loss beats the historical quantiles "
    "significantly and the 90% interval's coverage is near 0.90; mae: only if the median "
    "beats persistence (max_mae_ratio)",
    "coverage_tolerance": "gate_metric=pinball: the 90% interval's test coverage must be "
    "within this of 0.90",
    "model_name": "name of the model in the repository",
    "deploy_target": "local (model repository + server), gke (Deployment in the cluster) or "
    "vertex (Vertex AI endpoint); gke and vertex publish to a gs:// model_repository",
    "vertex_endpoint": "deploy_target=vertex: endpoint display name (empty: "
    "<model_name>-endpoint); its model with the traffic is train's champion",
    "serving_machine_type": "deploy_target=vertex: machine type of the serving replicas",
    "serving_min_replicas": "deploy_target=vertex or gke: fewest serving replicas",
    "serving_max_replicas": "deploy_target=vertex or gke: most serving replicas (autoscaling)",
    "serving_service_account": "deploy_target=vertex: the serving Google service account",
    "serving_namespace": "deploy_target=gke: namespace of the serving objects (and of the "
    "champion train reads)",
    "serving_k8s_service_account": "deploy_target=gke: Kubernetes service account of the pods",
}


#: The light ``check_parameters`` of each step (``module:function``). Of the
#: ``dataflow_*`` settings only the labels are checked here: Beam's own validator checks
#: the others (it needs Beam), when the transform builds its options, and lists every
#: problem at once there.
LIGHT_CHECKS: dict[str, str] = {
    **{
        step: f"components.{step}:check_parameters"
        for step in ("ingest", "transform", "tune", "train", "deploy")
    },
    "dataflow": "components.transform.parameters:check_dataflow_parameters",
}

#: Parameters whose step default is None: the pipeline passes "" for it.
EMPTY_IS_NONE = frozenset({"source_sha256", "column_mapping"})

#: Parameters a step checks together (train: the pinball gate needs the levels of the 90%
#: interval). A run that gives one of them runs with the others' defaults, so it is
#: checked with them; these are those defaults (``tests/test_defaults.py`` proves they are
#: the pipeline's, which are ``train.run``'s).
CHECKED_TOGETHER: tuple[tuple[str, ...], ...] = (("quantile_levels", "gate_metric"),)
RUN_DEFAULTS: dict[str, Any] = {
    "quantile_levels": DEFAULT_QUANTILE_LEVELS,
    "gate_metric": DEFAULT_GATE_METRIC,
}


def flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``), any case; ValueError otherwise."""
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def convert(given: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Command-line strings → typed values; and a sentence per value of the wrong type."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, text in given.items():
        kind = PARAMETER_TYPES[name]
        try:
            if kind is bool:
                values[name] = parse_bool(text)
            else:
                values[name] = kind(text) if kind is not str else text
        except ValueError:
            what = {int: "an integer", float: "a number", bool: "true or false"}[kind]
            problems.append(f"{flag(name)}: must be {what}, got {text!r}")
    return values, problems


def check_arguments(arguments: Mapping[str, Any]) -> list[str]:
    """A sentence per problem of the given pipeline arguments, each naming its parameter
    (``--tune-max-epochs: max_epochs must be >= 1, got 0``). Each step checks the values it
    will receive with its own ``check_parameters``; nothing is fetched or created."""
    arguments = dict(arguments)
    for group in CHECKED_TOGETHER:
        if any(name in arguments for name in group):
            for name in group:
                arguments.setdefault(name, RUN_DEFAULTS[name])
    per_step: dict[str, dict[str, Any]] = {}
    pipeline_name: dict[tuple[str, str], str] = {}
    for name, value in arguments.items():
        for step, parameter in {**PARAMETER_SOURCES, **PROFILE_PARAMETERS}.get(name, ()):
            # An empty string is the pipeline's "not given" for a step default of None.
            if not (value == "" and name in EMPTY_IS_NONE):
                per_step.setdefault(step, {})[parameter] = value
            pipeline_name[step, parameter] = name
    problems: dict[str, str] = {}
    for step, given in per_step.items():
        module, function = LIGHT_CHECKS[step].split(":")
        check = getattr(importlib.import_module(module), function)
        for parameter, problem in check(**given).items():
            name = pipeline_name.get((step, parameter))
            if name is not None:
                problems.setdefault(name, f"{flag(name)}: {problem}")
    return [problems[name] for name in PARAMETER_TYPES if name in problems]
