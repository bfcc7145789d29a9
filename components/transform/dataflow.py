"""Beam pipeline options for running the transform on Google Cloud Dataflow.

Only builds and validates options; submitting a job is the caller's business
(``transform.run(..., runner="dataflow", pipeline_options={...})``). Secure defaults:
a dedicated worker service account is required, workers get private IPs only (so a
subnetwork with Private Google Access is required), and the workers run the transform's
own container image, which already holds the project, so nothing is staged at run time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from apache_beam.options.pipeline_options import PipelineOptions

from components.transform.errors import TransformParameterError

_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_REGION = re.compile(r"[a-z]+(-[a-z]+)+\d+")
_GCS = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/.*)?")
_SERVICE_ACCOUNT = re.compile(r"[a-z][a-z0-9-]{4,62}@[a-z0-9.-]+\.gserviceaccount\.com")
_SUBNETWORK = re.compile(
    r"(https://www\.googleapis\.com/compute/v1/projects/[a-z0-9-]+/)?"
    r"regions/(?P<region>[a-z0-9-]+)/subnetworks/[a-z]([-a-z0-9]*[a-z0-9])?"
)
_JOB_NAME = re.compile(r"[a-z]([-a-z0-9]{0,62}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


class DataflowOptionsError(TransformParameterError):
    """One or more Dataflow options are missing or malformed (all are listed)."""


def default_job_name(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"crypto-transform-{now:%Y%m%d-%H%M%S}"


def dataflow_options(
    project: str,
    region: str,
    temp_location: str,
    staging_location: str,
    service_account_email: str,
    sdk_container_image: str,
    max_num_workers: int = 4,
    subnetwork: str | None = None,
    no_use_public_ips: bool = True,
    job_name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> PipelineOptions:
    """Validated ``PipelineOptions`` for ``DataflowRunner``; DataflowOptionsError lists
    every problem."""
    problems: list[str] = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    def required(name: str, value, pattern: re.Pattern, form: str) -> None:
        if not value:
            problems.append(f"{name} is required ({form})")
        elif not isinstance(value, str) or not pattern.fullmatch(value):
            problems.append(f"{name} must be {form}, got {value!r}")

    required("project", project, _PROJECT, "a GCP project id such as my-project-123")
    required("region", region, _REGION, "a GCP region such as europe-west1")
    required("temp_location", temp_location, _GCS, "a gs://bucket/path URI")
    required("staging_location", staging_location, _GCS, "a gs://bucket/path URI")
    required(
        "service_account_email",
        service_account_email,
        _SERVICE_ACCOUNT,
        "the Dataflow worker service account, NAME@PROJECT.iam.gserviceaccount.com",
    )
    if not sdk_container_image:
        problems.append(
            "sdk_container_image is required (the transform image, with the project installed)"
        )
    elif sdk_container_image.startswith("localhost"):
        problems.append(
            f"sdk_container_image {sdk_container_image!r} is local; Dataflow workers "
            "need a registry image (build and push the images with `make images`)"
        )
    check(
        isinstance(max_num_workers, int)
        and not isinstance(max_num_workers, bool)
        and max_num_workers >= 1,
        f"max_num_workers must be an integer >= 1, got {max_num_workers!r}",
    )
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
    if job_name is None:
        job_name = default_job_name()
    check(
        bool(_JOB_NAME.fullmatch(job_name or "")),
        f"job_name must be lower-case letters, digits and hyphens, starting with a letter "
        f"(at most 64), got {job_name!r}",
    )
    label_flags = []
    for key, value in (labels or {}).items():
        if _LABEL_KEY.fullmatch(str(key)) and _LABEL_VALUE.fullmatch(str(value)):
            label_flags.append(f"{key}={value}")
        else:
            problems.append(
                f"label {key}={value} is not a valid GCP label (lower-case letters, "
                "digits, _ and -; keys start with a letter; at most 63 characters)"
            )
    if problems:
        raise DataflowOptionsError("invalid Dataflow options:\n  - " + "\n  - ".join(problems))

    return PipelineOptions(
        flags=[],
        runner="DataflowRunner",
        project=project,
        region=region,
        temp_location=temp_location,
        staging_location=staging_location,
        service_account_email=service_account_email,
        sdk_container_image=sdk_container_image,
        # The image already holds Beam and the project: stage nothing, install nothing.
        sdk_location="container",
        max_num_workers=max_num_workers,
        subnetwork=subnetwork,
        use_public_ips=not no_use_public_ips,
        job_name=job_name,
        labels=label_flags,
    )
