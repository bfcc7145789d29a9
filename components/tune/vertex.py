"""The Vertex AI backend of the tune step: one HyperparameterTuningJob over the one search
space (``search_space.to_vertex_parameter_specs``).

Each trial is a custom job on the tune image (by digest) running
``python -m components.tune.trial`` with the sampled values; it reports the eval split's
mean pinball loss with cloudml-hypertune and leaves its row-by-row losses under the job's
staging folder.
This process waits for the job (the SDK logs its state) and reads every trial; the tune
step then builds the ``TuneResult`` the Optuna backend builds: same trials table, same
selection rule (``tune._vertex_result``). The job never outlives the step: on SIGTERM
(spot node reclaimed, run stopped, KFP retry) or any other exit before the job's end, the
job is cancelled (CancelHyperparameterTuningJob) and the step fails with
``TuningJobError``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from components.common.contracts import HPARAM_NAMES
from components.common.quantiles import DEFAULT_QUANTILE_LEVELS
from components.common.results import ParameterError
from components.common.termination import cancel_on_exit
from components.tune.search_space import SEARCH_SPACE, to_vertex_parameter_specs

log = logging.getLogger(__name__)

#: The metric every trial reports and the tuning job minimises: the eval split's mean
#: pinball loss over the quantile levels.
METRIC = "eval_pinball"
TRIAL_COMMAND = ["python", "-m", "components.tune.trial"]
#: Vertex trial states -> the Optuna backend's state names.
STATES = {"SUCCEEDED": "complete", "INFEASIBLE": "fail", "STOPPING": "pruned"}
#: Job states with nothing left to cancel (ended, or a cancel already under way).
ENDED = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLING",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
}


class TuningJobError(RuntimeError):
    """The tuning job did not run to its end (the step was terminated, or its wait
    failed); the job has been cancelled."""


@dataclass(frozen=True)
class VertexSettings:
    project: str | None
    region: str | None
    service_account: str | None
    staging_bucket: str | None
    image: str | None
    machine_type: str = "n1-standard-4"
    parallel_trials: int = 4
    #: Another API endpoint (a private one; the tests' loopback stand-in, with REST).
    api_endpoint: str | None = None
    api_transport: str | None = None

    def check(self, n_trials: int) -> None:
        from components.tune.parameters import check_parameters

        problems = check_parameters(
            backend="vertex",
            n_trials=n_trials,
            parallel_trials=self.parallel_trials,
            vertex_project=self.project,
            vertex_region=self.region,
            vertex_service_account=self.service_account,
            vertex_staging_bucket=self.staging_bucket,
            vertex_machine_type=self.machine_type,
            vertex_image=self.image or "",
        )
        if problems:
            raise ParameterError("invalid Vertex AI settings: " + "; ".join(problems.values()))


def fuse_path(uri: str) -> str:
    """``gs://b/x`` as a custom job sees it: ``/gcs/b/x`` (Cloud Storage FUSE)."""
    return "/gcs/" + uri.removeprefix("gs://") if uri.startswith("gs://") else uri


def parameter_specs():
    """The search space as ``hyperparameter_tuning`` specs for the SDK."""
    from google.cloud.aiplatform import hyperparameter_tuning as hpt

    scales = {"UNIT_LOG_SCALE": "log", "UNIT_LINEAR_SCALE": "linear"}
    specs = {}
    for spec in to_vertex_parameter_specs(SEARCH_SPACE):
        scale = scales.get(spec.get("scale_type"))
        if "double_value_spec" in spec:
            v = spec["double_value_spec"]
            specs[spec["parameter_id"]] = hpt.DoubleParameterSpec(
                min=v["min_value"], max=v["max_value"], scale=scale
            )
        elif "integer_value_spec" in spec:
            v = spec["integer_value_spec"]
            specs[spec["parameter_id"]] = hpt.IntegerParameterSpec(
                min=v["min_value"], max=v["max_value"], scale=scale
            )
        elif "discrete_value_spec" in spec:
            specs[spec["parameter_id"]] = hpt.DiscreteParameterSpec(
                values=spec["discrete_value_spec"]["values"], scale=scale
            )
        else:
            specs[spec["parameter_id"]] = hpt.CategoricalParameterSpec(
                values=spec["categorical_value_spec"]["values"]
            )
    return specs


def build_job(
    features_uri: str,
    stats_uri: str,
    settings: VertexSettings,
    *,
    n_trials: int,
    timeout_s: float,
    max_epochs: int,
    seed: int,
    patience: int,
    name: str,
    quantile_levels: str = DEFAULT_QUANTILE_LEVELS,
):
    """The HyperparameterTuningJob (not yet submitted) and the gs:// folder of trial errors."""
    from google.cloud import aiplatform

    aiplatform.init(
        project=settings.project,
        location=settings.region,
        staging_bucket=settings.staging_bucket,
        service_account=settings.service_account,
        api_endpoint=settings.api_endpoint,
        api_transport=settings.api_transport,
    )
    base = f"{settings.staging_bucket.rstrip('/')}/{name}"
    errors_dir = f"{base}/errors"
    args = [
        f"--features={fuse_path(features_uri)}",
        f"--stats={fuse_path(stats_uri)}",
        f"--errors-dir={fuse_path(errors_dir)}",
        f"--max-epochs={max_epochs}",
        f"--seed={seed}",
        f"--patience={patience}",
        f"--quantile-levels={quantile_levels}",
    ]
    trial_job = aiplatform.CustomJob(
        display_name=f"{name}-trial",
        worker_pool_specs=[
            {
                "machine_spec": {"machine_type": settings.machine_type},
                "replica_count": 1,
                "container_spec": {
                    "image_uri": settings.image,
                    "command": TRIAL_COMMAND,
                    "args": args,
                },
            }
        ],
        base_output_dir=base,
        staging_bucket=settings.staging_bucket,
        labels={"app": "crypto-kfp", "step": "tune"},
    )
    job = aiplatform.HyperparameterTuningJob(
        display_name=name,
        custom_job=trial_job,
        metric_spec={METRIC: "minimize"},
        parameter_spec=parameter_specs(),
        max_trial_count=n_trials,
        parallel_trial_count=settings.parallel_trials,
        labels={"app": "crypto-kfp", "step": "tune"},
    )
    return job, errors_dir


def search(
    features_uri: str,
    stats_uri: str,
    *,
    settings: VertexSettings,
    n_trials: int,
    timeout_s: float,
    max_epochs: int,
    seed: int,
    patience: int,
    quantile_levels: str = DEFAULT_QUANTILE_LEVELS,
    read_bytes=None,
) -> dict:
    """Run the tuning job, wait for it, and read its trials (``read_trials``)."""
    from components.common import uris

    settings.check(n_trials)
    name = f"crypto-tune-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    job, errors_dir = build_job(
        features_uri,
        stats_uri,
        settings,
        n_trials=n_trials,
        timeout_s=timeout_s,
        max_epochs=max_epochs,
        seed=seed,
        patience=patience,
        name=name,
        quantile_levels=quantile_levels,
    )
    started = time.monotonic()
    log.info(
        "Vertex AI tuning job %s: %d trials, %d in parallel",
        name,
        n_trials,
        settings.parallel_trials,
    )
    # Each trial may run for the search's time budget; the SDK logs the job's state.
    with cancel_on_exit(lambda: cancel_job(job), f"Vertex AI tuning job {name}", TuningJobError):
        job.run(service_account=settings.service_account, timeout=int(timeout_s), sync=True)
    reader = read_bytes or uris.read_bytes
    return {**read_trials(job.trials, errors_dir, reader), "elapsed_s": time.monotonic() - started}


def cancel_job(job) -> bool:
    """Send the job's cancel request (CancelHyperparameterTuningJob) unless it was never
    created or has ended (its state read once more); True if it was sent."""
    try:
        resource = job.resource_name
    except RuntimeError:  # the create request did not get through: no job
        return False
    if job.state.name in ENDED:
        return False
    log.warning("cancelling Vertex AI tuning job %s", resource)
    job.cancel()
    return True


def read_trials(trials, errors_dir: str, read_bytes) -> dict:
    """The job's trials (``gca`` Trial messages) as the Optuna backend's trial rows, with
    each succeeded trial's per-row eval pinball losses (the trials' files) and the eval
    pinball of the train period's historical quantiles (``baseline``)."""
    rows, errors, l2, baseline = [], {}, {}, math.nan
    for trial in trials:
        number = int(trial.id)
        state = STATES.get(trial.state.name, "fail")
        values = {p.parameter_id: p.value for p in trial.parameters}
        params = {n: _typed(n, values[n]) if n in values else None for n in HPARAM_NAMES}
        value = epochs = seconds = None
        if state == "complete":
            detail = json.loads(read_bytes(f"{errors_dir}/{trial.id}.json"))
            value = next(m.value for m in trial.final_measurement.metrics if m.metric_id == METRIC)
            errors[number] = np.asarray(detail["errors"], dtype=np.float64)
            l2[number] = params["l2"]
            epochs, baseline = detail["epochs"], detail["baseline"]
        if trial.start_time and trial.end_time:
            seconds = round((trial.end_time - trial.start_time).total_seconds(), 2)
        rows.append(
            {
                "number": number,
                "state": state,
                "eval_pinball": value,
                "epochs": epochs,
                "seconds": seconds,
                "params": params,
            }
        )
    return {"rows": rows, "errors": errors, "l2": l2, "baseline": baseline}


def _typed(name: str, value):
    """Vertex returns every value as a double: ints and the batch size become ints."""
    kind = next(p.type for p in SEARCH_SPACE if p.name == name)
    return int(round(value)) if kind in ("int", "categorical") else float(value)
