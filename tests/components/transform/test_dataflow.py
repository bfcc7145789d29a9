"""Dataflow pipeline options: built from parameters and validated; nothing is submitted."""

from __future__ import annotations

import pytest

from components.transform.dataflow import DataflowOptionsError, dataflow_options
from tests.components.transform.outputs import run_transform

GOOD = {
    "project": "crypto-dev-123",
    "region": "europe-west1",
    "temp_location": "gs://crypto-dev-dataflow/temp",
    "staging_location": "gs://crypto-dev-dataflow/staging",
    "service_account_email": "dataflow-worker@crypto-dev-123.iam.gserviceaccount.com",
    "sdk_container_image": "europe-west1-docker.pkg.dev/crypto-dev-123/steps/transform:0.1.0",
    "max_num_workers": 3,
    "subnetwork": "regions/europe-west1/subnetworks/pipelines",
    "job_name": "crypto-transform-test",
    "labels": {"app": "crypto-kfp", "step": "transform"},
}


def test_options_carry_every_parameter() -> None:
    options = dataflow_options(**GOOD).get_all_options()
    assert options["runner"] == "DataflowRunner"
    for key in (
        "project",
        "region",
        "temp_location",
        "staging_location",
        "service_account_email",
        "sdk_container_image",
        "max_num_workers",
        "subnetwork",
        "job_name",
    ):
        assert options[key] == GOOD[key], key
    assert options["use_public_ips"] is False  # private workers by default
    assert sorted(options["labels"]) == ["app=crypto-kfp", "step=transform"]
    assert options["sdk_location"] == "container"  # nothing staged: the image has Beam + project


def test_public_ips_only_on_request_and_then_no_subnetwork_needed() -> None:
    options = dataflow_options(**{**GOOD, "subnetwork": None, "no_use_public_ips": False})
    assert options.get_all_options()["use_public_ips"] is True


def test_default_job_name_is_valid_and_unique_per_second() -> None:
    name = dataflow_options(**{**GOOD, "job_name": None}).get_all_options()["job_name"]
    assert name.startswith("crypto-transform-")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"project": ""}, "Missing required option: project"),  # Beam's check
        ({"region": ""}, "region is required"),
        ({"project": "My_Project"}, "Invalid Project ID (My_Project)"),  # Beam's check
        ({"temp_location": "/tmp/x"}, "Invalid GCS path (/tmp/x)"),  # Beam's check
        ({"staging_location": None}, "Missing GCS path option: staging_location"),
        ({"service_account_email": ""}, "service_account_email is required"),
        ({"service_account_email": "someone@gmail.com"}, "service_account_email must be"),
        ({"sdk_container_image": ""}, "sdk_container_image is required"),
        (
            {"sdk_container_image": "localhost/crypto-kfp/transform:0.1.0"},
            "Dataflow workers need a registry image",
        ),
        ({"max_num_workers": 0}, "max_num_workers must be an integer >= 1"),
        ({"subnetwork": None}, "subnetwork is required when workers have no public IPs"),
        ({"subnetwork": "pipelines"}, "subnetwork must be regions/REGION/subnetworks/NAME"),
        (
            {"subnetwork": "regions/us-central1/subnetworks/pipelines"},
            "subnetwork is in region us-central1",
        ),
        ({"job_name": "Bad_Name"}, "Invalid job_name (Bad_Name)"),  # Beam's check
        ({"staging_location": "gs://x"}, "Invalid GCS bucket (gs://x)"),  # Beam's check
        ({"labels": {"Team": "x"}}, "label Team=x is not a valid GCP label"),
    ],
)
def test_each_invalid_value_is_named(change: dict, message: str) -> None:
    with pytest.raises(DataflowOptionsError, match="invalid Dataflow options") as caught:
        dataflow_options(**{**GOOD, **change})
    assert message in str(caught.value)


def test_all_problems_are_listed_at_once() -> None:
    with pytest.raises(DataflowOptionsError) as caught:
        dataflow_options(**{**GOOD, "project": "", "subnetwork": "x", "temp_location": "x"})
    assert str(caught.value).count("\n  - ") == 3


def test_full_subnetwork_url_is_accepted() -> None:
    url = (
        "https://www.googleapis.com/compute/v1/projects/crypto-dev-123/regions/europe-west1/"
        "subnetworks/pipelines"
    )
    assert dataflow_options(**{**GOOD, "subnetwork": url}).get_all_options()["subnetwork"] == url


def test_run_transform_validates_dataflow_options_before_submitting(monkeypatch) -> None:
    # Inputs on gs:// are not read: the options fail first and no job is built.
    monkeypatch.setattr("components.transform.transform.read_header", lambda path: "x")
    monkeypatch.setattr(
        "components.transform.transform.RowParser.from_header", lambda *a, **k: None
    )
    with pytest.raises(DataflowOptionsError, match="Missing required option: project"):
        run_transform(
            "gs://raw/in.csv",
            "gs://out/features",
            runner="dataflow",
            pipeline_options={**GOOD, "project": ""},
        )
