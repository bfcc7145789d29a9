"""Publishing a trained SavedModel as a new version folder in the models bucket.

Both cloud targets serve a fixed, immutable version folder
``<repository>/<model_name>/<version>/`` (``gs://``): Vertex AI as the Model Registry
version's artifact URI, GKE as the server's ``--model-repository`` (a SavedModelSource).

Versions are integers that increase by one: the next version is one above the highest
version folder under ``<repository>/<model_name>/``. It is claimed before anything is
copied by creating ``<version>/deployment.json`` with ``if_generation_match=0`` (the
create succeeds for exactly one writer); a deploy that loses the race takes the next
number. The claim holds the record with ``"state": "publishing"``; after the copy the
record is rewritten, on the claim's generation, with ``"state": "published"``. A failed
copy removes what it wrote, claim included.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.results import ParameterError
from components.common.uris import is_gcs_uri, split_gcs_uri, storage_client_or_default
from components.deploy.repository import (
    RECORD_FILE,
    VERSION_PATTERN,
    select_versions,
    validate_model_name,
)

if TYPE_CHECKING:
    from google.cloud import storage

log = logging.getLogger(__name__)

#: Claims tried before giving up when concurrent deploys keep taking the next number.
CLAIM_ATTEMPTS = 10


class PublishError(RuntimeError):
    """The version could not be published; what was written has been removed."""


@dataclass(frozen=True)
class PublishedVersion:
    """A version folder in the models bucket and the record written beside it."""

    uri: str
    version: str
    record: dict


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _source_version(model_dir: str | Path, version: str | None) -> tuple[str, Path]:
    """The train output's version folder to publish: ``version``, else the highest."""
    version = select_versions(model_dir, version)[-1]
    return version, Path(model_dir) / version


def existing_versions(bucket: storage.Bucket, prefix: str) -> list[int]:
    """The version folders (integers) under ``prefix/`` of ``bucket``, ascending."""
    blobs = bucket.list_blobs(prefix=prefix + "/", delimiter="/")
    list(blobs)  # the prefixes are known once the pages are read
    found = {p[len(prefix) + 1 :].rstrip("/") for p in blobs.prefixes}
    return sorted(int(v) for v in found if VERSION_PATTERN.match(v) and int(v) > 0)


def claim_version(
    bucket: storage.Bucket, prefix: str, record: dict, start: int | None = None
) -> tuple[str, storage.Blob]:
    """Create ``<prefix>/<version>/deployment.json`` for the first free version from
    ``start`` (default: one above the highest listed); the version and its blob."""
    from google.api_core import exceptions

    if start is None:
        versions = existing_versions(bucket, prefix)
        start = (versions[-1] if versions else 0) + 1
    candidate = start
    for _ in range(CLAIM_ATTEMPTS):
        blob = bucket.blob(f"{prefix}/{candidate}/{RECORD_FILE}")
        claim = {**record, "version": str(candidate), "state": "publishing"}
        try:
            blob.upload_from_string(
                json.dumps(claim, indent=2),
                content_type="application/json",
                if_generation_match=0,
            )
            return str(candidate), blob
        except exceptions.PreconditionFailed:
            log.info("version %s was claimed by another deploy; trying the next", candidate)
            candidate += 1
    raise PublishError(
        f"could not claim a version under gs://{bucket.name}/{prefix}/ after "
        f"{CLAIM_ATTEMPTS} attempts (concurrent deploys took every number tried)"
    )


def publish_version(
    model_dir: str | Path,
    repository: str,
    model_name: str,
    *,
    version: str | None = None,
    metrics: dict | None = None,
    source_run: str | None = None,
    target: str = "",
    quantile_levels: Sequence[float] | None = None,
    storage_client: storage.Client | None = None,
) -> PublishedVersion:
    """Copy train's ``<model_dir>/<version>/`` (default: its highest version) to the next
    version folder of ``<repository>/<model_name>/`` and record it there, with the model's
    ``quantile_levels`` (None: a point model)."""
    from google.api_core import exceptions

    if not is_gcs_uri(str(repository)):
        raise ParameterError(
            f"the cloud deploy targets publish to the models bucket: model_repository must "
            f"be gs://..., got {repository!r}"
        )
    validate_model_name(model_name)
    source_version, source = _source_version(model_dir, version)
    bucket_name, root = split_gcs_uri(str(repository).rstrip("/"))
    prefix = "/".join(p for p in (root.strip("/"), model_name) if p)
    bucket = storage_client_or_default(storage_client).bucket(bucket_name)
    record = {
        "action": "deploy",
        "target": target,
        "model_name": model_name,
        "metrics": json.loads(json.dumps(metrics or {})),
        "source_run": source_run,
        "source_model_dir": str(model_dir),
        "source_version": source_version,
        "deployed_at": _now(),
        "quantile_levels": None if quantile_levels is None else list(quantile_levels),
    }
    try:
        new_version, claim = claim_version(bucket, prefix, record)
    except exceptions.GoogleAPICallError as exc:
        raise PublishError(f"cannot write to gs://{bucket_name}/{prefix}/: {exc}") from exc
    uri = f"gs://{bucket_name}/{prefix}/{new_version}"
    written = []
    try:
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.name != RECORD_FILE:
                name = f"{prefix}/{new_version}/{path.relative_to(source).as_posix()}"
                bucket.blob(name).upload_from_filename(str(path))
                written.append(name)
        record = {**record, "version": new_version, "uri": uri, "state": "published"}
        claim.reload()
        claim.upload_from_string(
            json.dumps(record, indent=2),
            content_type="application/json",
            if_generation_match=claim.generation,
        )
    except (exceptions.GoogleAPICallError, OSError) as exc:
        for name in [*written, claim.name]:
            try:
                bucket.blob(name).delete()
            except exceptions.GoogleAPICallError:
                log.warning(
                    "could not remove gs://%s/%s after the failed publish", bucket_name, name
                )
        raise PublishError(f"publishing {uri} failed and was undone: {exc}") from exc
    log.info(
        "published %s version %s (train version %s) to %s",
        model_name,
        new_version,
        source_version,
        uri,
    )
    return PublishedVersion(uri=uri, version=new_version, record=record)
