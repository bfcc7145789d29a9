"""Running the transform on Google Cloud Dataflow: options, submission, waiting.

``dataflow_options`` builds ``PipelineOptions`` for ``DataflowRunner``. Beam's own
``PipelineOptionsValidator`` does the generic checks (project id, region, job name, gs://
paths, worker counts, SDK image flags); on top of them only this project's rules:

* a dedicated worker service account is required (never the Compute default account);
* workers get private IPs only unless asked, so a subnetwork (with Private Google Access)
  is required, and it must be in the job's region;
* workers run the transform's worker image from a registry (nothing is staged or
  pip-installed at run time);
* temp and staging locations are both required (Beam's path checks are called directly:
  its validation would otherwise fall back to the other one, or create a default bucket
  that has none of the stack's settings); so is the region (Beam would ask gcloud);
* labels are valid GCP labels (Dataflow rejects the whole job otherwise).

``run_and_wait`` submits the job, streams its state and messages to the log (Beam's
poller logs each state change and every job message), waits, and raises
``DataflowJobError`` with the job's own error when it does not end in ``DONE``. The job
never outlives the step: on SIGTERM or any other exit before its end it is cancelled.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    WorkerOptions,
)
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator

from components.common.termination import cancel_on_exit
from components.transform.errors import TransformError, TransformParameterError
from components.transform.parameters import LABEL_KEY, LABEL_VALUE

log = logging.getLogger(__name__)

_SERVICE_ACCOUNT = re.compile(r"[a-z][a-z0-9-]{4,62}@[a-z0-9.-]+\.gserviceaccount\.com")
_SUBNETWORK = re.compile(
    r"(https://www\.googleapis\.com/compute/v1/projects/[a-z0-9-]+/)?"
    r"regions/(?P<region>[a-z0-9-]+)/subnetworks/[a-z]([-a-z0-9]*[a-z0-9])?"
)


class DataflowOptionsError(TransformParameterError):
    """One or more Dataflow options are missing or malformed (all are listed)."""


class DataflowJobError(TransformError):
    """The Dataflow job was submitted but did not finish successfully."""


def default_job_name(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"crypto-transform-{now:%Y%m%d-%H%M%S}"


def _beam_problems(options: PipelineOptions) -> list[str]:
    """Beam's generic checks of the Dataflow options, without its side effects (it would
    otherwise fall back between temp and staging, or create a default bucket)."""
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    validator = PipelineOptionsValidator(options, DataflowRunner())
    cloud = options.view_as(GoogleCloudOptions)
    problems = [
        *validator.validate_cloud_options(cloud),
        *validator.validate_gcs_path(cloud, "temp_location"),
        *validator.validate_gcs_path(cloud, "staging_location"),
        *options.view_as(WorkerOptions).validate(validator),
    ]
    return [p.strip() for p in problems]


def dataflow_options(
    *,
    project: str | None = None,
    region: str | None = None,
    temp_location: str | None = None,
    staging_location: str | None = None,
    service_account_email: str | None = None,
    sdk_container_image: str | None = None,
    max_num_workers: int = 4,
    machine_type: str | None = None,
    subnetwork: str | None = None,
    no_use_public_ips: bool = True,
    job_name: str | None = None,
    labels: Mapping[str, str] | None = None,
    dataflow_endpoint: str | None = None,
) -> PipelineOptions:
    """Validated ``PipelineOptions`` for ``DataflowRunner``; DataflowOptionsError lists
    every problem. Each default here is the pipeline's ``dataflow_*`` parameter default
    (``pipeline.crypto_pipeline.PARAMETER_SOURCES``); the gcp profile fills the required
    ones from the stack outputs. ``dataflow_endpoint``: another Dataflow API endpoint (a regional or
    private one; the tests' loopback stand-in)."""
    problems: list[str] = []
    if not region:
        # Checked here: Beam would ask gcloud for a default region instead.
        problems.append("region is required (the region of the subnetwork and buckets)")
    if not service_account_email:
        problems.append(
            "service_account_email is required (the Dataflow worker service account, "
            "NAME@PROJECT.iam.gserviceaccount.com)"
        )
    elif not _SERVICE_ACCOUNT.fullmatch(service_account_email):
        problems.append(
            "service_account_email must be a service account, NAME@PROJECT.iam."
            f"gserviceaccount.com, got {service_account_email!r}"
        )
    if not sdk_container_image:
        problems.append(
            "sdk_container_image is required (the transform-worker image of images.json)"
        )
    elif sdk_container_image.startswith("localhost"):
        problems.append(
            f"sdk_container_image {sdk_container_image!r} is local; Dataflow workers "
            "need a registry image (build and push the images with `make images`)"
        )
    if isinstance(max_num_workers, bool) or not isinstance(max_num_workers, int):
        problems.append(f"max_num_workers must be an integer >= 1, got {max_num_workers!r}")
    elif max_num_workers < 1:
        problems.append(f"max_num_workers must be an integer >= 1, got {max_num_workers!r}")
    if subnetwork:
        match = _SUBNETWORK.fullmatch(subnetwork)
        if not match:
            problems.append(
                "subnetwork must be regions/REGION/subnetworks/NAME or its full "
                f"https://www.googleapis.com/compute/v1/projects/... URL, got {subnetwork!r}"
            )
        elif region and match["region"] != region:
            problems.append(f"subnetwork is in region {match['region']}, the job in {region}")
    elif no_use_public_ips:
        problems.append(
            "subnetwork is required when workers have no public IPs (a subnetwork "
            "with Private Google Access, e.g. regions/REGION/subnetworks/NAME)"
        )
    label_flags = []
    for key, value in (labels or {}).items():
        if LABEL_KEY.fullmatch(str(key)) and LABEL_VALUE.fullmatch(str(value)):
            label_flags.append(f"{key}={value}")
        else:
            problems.append(
                f"label {key}={value} is not a valid GCP label (lower-case letters, "
                "digits, _ and -; keys start with a letter; at most 63 characters)"
            )
    extra = {"dataflow_endpoint": dataflow_endpoint} if dataflow_endpoint else {}
    options = PipelineOptions(
        flags=[],
        runner="DataflowRunner",
        project=project or None,
        region=region or None,
        temp_location=temp_location or None,
        staging_location=staging_location or None,
        service_account_email=service_account_email,
        sdk_container_image=sdk_container_image,
        # The image already holds Beam and the project: stage nothing, install nothing.
        sdk_location="container",
        max_num_workers=max_num_workers,
        machine_type=machine_type or None,
        subnetwork=subnetwork or None,
        use_public_ips=not no_use_public_ips,
        job_name=default_job_name() if job_name is None else job_name,
        labels=label_flags,
        **extra,
    )
    if region:
        problems += _beam_problems(options)
    if problems:
        raise DataflowOptionsError("invalid Dataflow options:\n  - " + "\n  - ".join(problems))
    return options


def run_and_wait(pipeline) -> str:
    """Submit ``pipeline`` (built with ``dataflow_options``) and wait for the job's end.
    Beam's poller logs every state change and job message meanwhile. Returns ``"DONE"``;
    raises DataflowJobError with the job's error message otherwise.

    The job does not outlive the step: SIGTERM during the submission or the wait (spot
    node reclaimed, run stopped, KFP retry) or any other exit before the job's end sends
    the job's cancel request (jobs.update, requestedState JOB_STATE_CANCELLED), then the
    step fails with DataflowJobError saying so."""
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRuntimeException

    cloud = pipeline.options.view_as(GoogleCloudOptions)
    submitted = []  # the PipelineResult, once the job is submitted

    def cancel() -> bool:
        if not submitted or not getattr(submitted[0], "has_job", False):
            return False
        result = submitted[0]
        if result.is_in_terminal_state():  # the state last polled: the job has ended
            return False
        # Beam reads the job once more, and sends the cancel only if it is still live.
        result.cancel()
        return True

    def what() -> str:
        job_id = submitted and getattr(submitted[0], "has_job", False) and submitted[0].job_id()
        return f"Dataflow job {cloud.job_name}" + (f" ({job_id})" if job_id else "")

    with cancel_on_exit(cancel, what, DataflowJobError):
        try:
            result = pipeline.run()
        except DataflowRuntimeException as exc:
            raise DataflowJobError(f"{what()} was not submitted: {exc}") from exc
        submitted.append(result)
        job_id = result.job_id() if hasattr(result, "job_id") else None
        log.info(
            "Dataflow job %s (%s) submitted: https://console.cloud.google.com/dataflow/jobs/"
            "%s/%s?project=%s",
            cloud.job_name,
            job_id,
            cloud.region,
            job_id,
            cloud.project,
        )
        try:
            state = result.wait_until_finish()
        except DataflowRuntimeException as exc:
            raise DataflowJobError(f"{what()} failed: {exc}") from exc
    state = str(state or "DONE").removeprefix("PipelineState.")
    if state != "DONE":
        raise DataflowJobError(f"{what()} ended in state {state}")
    log.info("%s done", what())
    return state
