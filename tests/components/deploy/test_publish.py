"""Publishing a version folder to the models bucket, against gcp-storage-emulator (the real
google-cloud-storage client over loopback HTTP)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from components.common.results import ParameterError
from components.deploy.publish import (
    PublishError,
    claim_version,
    existing_versions,
    publish_version,
)
from components.deploy.repository import RepositoryError

NAME = "btc-forecast"


def _names(bucket, prefix: str) -> set[str]:
    return {b.name for b in bucket.list_blobs(prefix=prefix)}


def test_versions_count_up_and_each_folder_holds_the_savedmodel_and_its_record(bucket, model_dir):
    root = f"gs://{bucket.name}/repository"
    source = model_dir("v1")
    first = publish_version(
        source, root, NAME, metrics={"mae": 1.5}, source_run="run-1", target="gke"
    )
    second = publish_version(
        model_dir("v2"), root, NAME, source_run="run-2", target="gke", quantile_levels=(0.1, 0.5)
    )
    assert (first.version, second.version) == ("1", "2")
    assert first.uri == f"gs://{bucket.name}/repository/{NAME}/1"
    expected = {
        f"repository/{NAME}/1/{p.relative_to(source / '1').as_posix()}"
        for p in (source / "1").rglob("*")
        if p.is_file()
    }
    assert f"repository/{NAME}/1/saved_model.pb" in expected
    assert _names(bucket, f"repository/{NAME}/1/") == expected | {
        f"repository/{NAME}/1/deployment.json"
    }
    record = json.loads(bucket.blob(f"repository/{NAME}/1/deployment.json").download_as_bytes())
    assert record == first.record
    assert record["state"] == "published" and record["version"] == "1"
    assert record["metrics"] == {"mae": 1.5} and record["source_run"] == "run-1"
    assert record["source_version"] == "1" and record["target"] == "gke"
    assert record["uri"] == first.uri and record["deployed_at"].endswith("+00:00")
    assert record["quantile_levels"] is None  # not given: a point model
    second_record = bucket.blob(f"repository/{NAME}/2/deployment.json").download_as_bytes()
    assert json.loads(second_record)["source_version"] == "2"
    assert json.loads(second_record)["quantile_levels"] == [0.1, 0.5]
    assert existing_versions(bucket, f"repository/{NAME}") == [1, 2]


def test_a_version_claimed_after_the_listing_is_skipped(bucket, strict_storage):
    """Two deploys listed the same versions: the one that creates the record second gets a
    412 from ``if_generation_match=0`` and takes the next number; the first one's claim
    is untouched."""
    client, adapter = strict_storage
    bucket.blob(f"{NAME}/1/deployment.json").upload_from_string('{"state": "other"}')
    version, blob = claim_version(client.bucket(bucket.name), NAME, {"target": "gke"}, start=1)
    assert version == "2" and blob.name == f"{NAME}/2/deployment.json"
    uploads = [q for m, _, q in adapter.log if m == "POST"]
    assert [(q["object"], q["ifGenerationMatch"]) for q in uploads] == [
        (f"{NAME}/1/deployment.json", "0"),
        (f"{NAME}/2/deployment.json", "0"),
    ]
    assert json.loads(blob.download_as_bytes()) == {
        "target": "gke",
        "version": "2",
        "state": "publishing",
    }
    assert bucket.blob(f"{NAME}/1/deployment.json").download_as_bytes() == b'{"state": "other"}'


def test_concurrent_deploys_never_get_the_same_version(bucket, strict_storage, model_dir):
    client, adapter = strict_storage
    source, root = model_dir("v1"), f"gs://{bucket.name}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda _: publish_version(source, root, NAME, storage_client=client), range(4))
        )
    assert sorted(r.version for r in results) == ["1", "2", "3", "4"]
    for r in results:
        record = json.loads(bucket.blob(f"{NAME}/{r.version}/deployment.json").download_as_bytes())
        assert record["state"] == "published" and record["version"] == r.version
    # the final record is written on the claim's generation, never blindly
    records = [q for m, _, q in adapter.log if m == "POST" and "deployment.json" in q["object"]]
    assert all("ifGenerationMatch" in q for q in records)
    finals = [q for q in records if q["ifGenerationMatch"] != "0"]
    assert len(finals) == 4 and all(int(q["ifGenerationMatch"]) > 0 for q in finals)


def test_a_listed_version_is_skipped(bucket, model_dir):
    bucket.blob(f"{NAME}/7/deployment.json").upload_from_string('{"state": "publishing"}')
    assert publish_version(model_dir("v1"), f"gs://{bucket.name}", NAME).version == "8"


def test_a_failed_copy_removes_what_it_wrote_claim_included(bucket, strict_storage, model_dir):
    client, adapter = strict_storage
    adapter.refuse = "/variables/"
    with pytest.raises(PublishError, match=r"publishing gs://.*/1 failed and was undone: 403"):
        publish_version(model_dir("v1"), f"gs://{bucket.name}", NAME, storage_client=client)
    written = [q["object"] for m, _, q in adapter.log if m == "POST"]
    assert f"{NAME}/1/deployment.json" in written and f"{NAME}/1/saved_model.pb" in written
    assert _names(bucket, "") == set()  # nothing left: the next deploy takes version 1 again
    adapter.refuse = None
    assert publish_version(model_dir("v1"), f"gs://{bucket.name}", NAME).version == "1"


def test_unusable_inputs_name_the_problem(bucket, model_dir, tmp_path):
    with pytest.raises(ParameterError, match="model_repository must be gs://"):
        publish_version(model_dir("v1"), str(tmp_path), NAME)
    with pytest.raises(RepositoryError, match="version 9 not found"):
        publish_version(model_dir("v1"), f"gs://{bucket.name}", NAME, version="9")
    with pytest.raises(RepositoryError, match="invalid model name"):
        publish_version(model_dir("v1"), f"gs://{bucket.name}", "../up")
    assert _names(bucket, "") == set()
