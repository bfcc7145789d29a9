"""Ingest: fetch the raw CSV, validate it, and store it immutably in the data lake.

The source is an https URL, a ``gs://`` URI or a local path; the lake is a
``gs://bucket/prefix`` or a local directory. Nothing is stored unless the bytes are a
non-empty UTF-8 CSV whose header holds the required columns (after the optional column
mapping) and, when one is expected, whose SHA-256 matches.

The stored name is content-addressed, ``<lake>/raw/sha256=<hex>/<source file name>``,
so a re-run with the same bytes finds them already there and stores nothing. Nothing is
ever overwritten: GCS uploads carry ``ifGenerationMatch=0``, local files are created
exclusively (written to a temporary name, then hard-linked into place).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.results import ParameterError, StepResult, raise_for_problems
from components.common.schema import SchemaError, parse_column_mapping, resolve_columns
from components.common.uris import (
    basename,
    gcs_uri,
    is_gcs_uri,
    is_http_url,
    is_local,
    local_dir_problem,
    local_path,
    read_bytes,
    split_gcs_uri,
    storage_client_or_default,
)

if TYPE_CHECKING:
    from google.cloud import storage

#: The public copy of the Kaggle data set, pinned to a commit (see DESIGN.md).
DEFAULT_SOURCE = (
    "https://raw.githubusercontent.com/ernestsoo/ndd3/"
    "17ad1c7af6fb8586a86707324d51a157f0cc9654/crypto-markets.csv"
)
#: SHA-256 of DEFAULT_SOURCE; always checked when that URL is the source.
DEFAULT_SHA256 = "4dd246ed93318ea4dfa0fd1226080c74422a6e08909e85e63da11522adaf302d"
#: Folder under the lake that holds the raw objects.
RAW_DIR = "raw"
#: Suffix of the local sidecar file holding an object's metadata.
METADATA_SUFFIX = ".metadata.json"

log = logging.getLogger(__name__)

_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class IngestError(ValueError):
    """The source was rejected or the lake is inconsistent; the message says why."""


@dataclass(frozen=True)
class IngestResult(StepResult):
    lake_uri: str  #: where the immutable copy lives
    sha256: str
    bytes: int
    rows: int  #: data rows, header excluded
    source: str
    fetched_at: str  #: UTC, ISO 8601
    stored_new: bool  #: False when the lake already held these bytes

    def output_metadata(self) -> dict[str, dict]:
        return {"raw": {k: getattr(self, k) for k in (*_METADATA_KEYS, "lake_uri", "stored_new")}}

    def object_metadata(self) -> dict[str, str]:
        """What is recorded with the stored object (GCS custom metadata is strings)."""
        return {k: str(v) for k, v in asdict(self).items() if k in _METADATA_KEYS}


_METADATA_KEYS = ("source", "sha256", "bytes", "rows", "fetched_at")


def expected_checksum(source: str, expected_sha256: str | None) -> str | None:
    """The SHA-256 to enforce: the one given, else the pinned one for DEFAULT_SOURCE."""
    if expected_sha256 is None or not expected_sha256.strip():
        return DEFAULT_SHA256 if source == DEFAULT_SOURCE else None
    normalized = expected_sha256.strip().lower()
    if not _SHA256_RE.fullmatch(normalized):
        raise ParameterError(f"expected SHA-256 must be 64 hex digits, got {expected_sha256!r}")
    return normalized


def validate_csv(data: bytes, column_mapping: str | Mapping[str, str] | None = None) -> int:
    """Check that ``data`` is a non-empty CSV with the required columns; return its row count.

    Rows are CSV records after the header, blank lines not counted. Raises IngestError.
    """
    if not data:
        raise IngestError("empty file (0 bytes)")
    if not data.strip():
        raise IngestError(f"empty file ({len(data)} bytes of whitespace only)")
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(_HTML_STARTS) or (head.startswith(b"<") and b"<html" in head):
        raise IngestError(
            "got HTML, not CSV (a web page such as a 404 or sign-in page; "
            "point the source at the raw file)"
        )
    if data.startswith(b"\x1f\x8b"):
        raise IngestError("got gzip-compressed data, not CSV; decompress it first")
    nul = data.find(b"\0")
    if nul >= 0:
        raise IngestError(f"got binary data, not CSV (NUL byte at offset {nul})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"not a UTF-8 text CSV: undecodable byte at offset {exc.start} "
            "(binary or garbled data, or another encoding)"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next((record for record in reader if record), None)
        if header is None:
            raise IngestError("empty file (no CSV records)")
        try:
            resolve_columns(header, column_mapping)
        except SchemaError as exc:
            raise IngestError(str(exc)) from None
        rows = sum(1 for record in reader if record)
    except csv.Error as exc:
        raise IngestError(f"does not parse as CSV: line {reader.line_num}: {exc}") from None
    if rows == 0:
        raise IngestError("the CSV has a header but no data rows")
    return rows


def check_parameters(
    *,
    source: object = None,
    lake: object = None,
    expected_sha256: object = None,
    column_mapping: str | Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{parameter: problem}`` of the given (not None) parameters of ``run`` (source and
    lake must not be empty; a local lake must be a folder this user can create or write).
    Nothing is fetched."""
    problems: dict[str, str] = {}
    if source is not None and not source:
        problems["source"] = "no source given"
    if lake is None:
        pass
    elif not lake:
        problems["lake"] = "no lake given (a gs://bucket/prefix or a local directory)"
    elif not isinstance(lake, str) or is_http_url(lake):
        problems["lake"] = f"the lake must be a gs:// URI or a local directory, not a URL: {lake}"
    elif is_local(lake) and (problem := local_dir_problem("lake", lake)):
        problems["lake"] = problem
    if expected_sha256 is not None:
        try:
            expected_checksum(str(source or ""), str(expected_sha256))
        except ParameterError as exc:
            problems["expected_sha256"] = str(exc)
    try:
        parse_column_mapping(column_mapping)
    except ParameterError as exc:
        problems["column_mapping"] = str(exc)
    return problems


def raw_object_name(sha256: str, filename: str) -> str:
    """Lake-relative, content-addressed name of a raw object."""
    return f"{RAW_DIR}/sha256={sha256}/{filename}"


def run(
    source: str = DEFAULT_SOURCE,
    lake: str = "",
    *,
    raw_path: str | os.PathLike | None = None,
    expected_sha256: str | None = None,
    column_mapping: str | Mapping[str, str] | None = None,
    storage_client: storage.Client | None = None,
) -> IngestResult:
    """Fetch ``source``, validate it, store it in ``lake`` unless already there.

    ``expected_sha256`` defaults to DEFAULT_SHA256 when ``source`` is DEFAULT_SOURCE.
    ``raw_path`` (e.g. a KFP Dataset path), when given, receives a byte-for-byte copy.
    ``storage_client`` is used for gs:// sources and lakes (default: ADC client).
    Raises ParameterError (no source or lake), IngestError (bad input, lake conflict) or
    FetchError (source unreadable).
    """
    # An unusable parameter is refused before any fetch.
    raise_for_problems(
        check_parameters(
            source=source,
            lake=lake,
            expected_sha256=expected_sha256,
            column_mapping=column_mapping,
        )
    )
    if is_local(source):  # record where the bytes came from, independent of the cwd
        source = os.path.abspath(local_path(source))
    checksum = expected_checksum(source, expected_sha256)
    fetched_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = read_bytes(source, storage_client=storage_client)
    try:
        rows = validate_csv(data, column_mapping)
    except IngestError as exc:
        raise IngestError(f"{source}: {exc}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    if checksum is not None and sha256 != checksum:
        raise IngestError(f"{source}: checksum mismatch: expected {checksum}, got {sha256}")

    name = raw_object_name(sha256, _safe_filename(basename(source)))
    result = IngestResult("", sha256, len(data), rows, source, fetched_at, stored_new=True)
    if is_gcs_uri(lake):
        client = storage_client_or_default(storage_client)
        lake_uri, stored_new = _store_gcs(client, lake, name, data, result.object_metadata())
    else:
        lake_uri, stored_new = _store_local(local_path(lake), name, data, result)

    if raw_path:
        out = Path(raw_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    log.info(
        "%s %s (%d rows, sha256 %s)",
        "stored" if stored_new else "already in the lake:",
        lake_uri,
        rows,
        sha256,
    )
    return replace(result, lake_uri=lake_uri, stored_new=stored_new)


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    if not cleaned or cleaned.endswith(METADATA_SUFFIX):
        return "data.csv"
    return cleaned


def _conflict(where: str, found: str, sha256: str) -> IngestError:
    return IngestError(
        f"refusing to overwrite {where}: it exists with different content "
        f"(sha256 {found}, expected {sha256}). Raw data is immutable; "
        "inspect or remove that object by hand."
    )


# --- local lake --------------------------------------------------------------------------


def _store_local(lake_dir: Path, name: str, data: bytes, result: IngestResult) -> tuple[str, bool]:
    target = lake_dir / name
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IngestError(f"cannot create lake folder {folder}: {exc.strerror or exc}") from None
    sidecar = json.dumps({k: getattr(result, k) for k in _METADATA_KEYS}, indent=2) + "\n"
    existing = _existing_local(folder, target.name)
    if existing is None:
        if _create_exclusive(target, data):
            _create_exclusive(_sidecar(target), sidecar.encode())
            return str(target), True
        existing = target  # another writer got there between the check and the link
    found = hashlib.sha256(existing.read_bytes()).hexdigest()
    if found != result.sha256:
        raise _conflict(str(existing), found, result.sha256)
    if not _sidecar(existing).exists():  # e.g. a crash between data and sidecar
        _create_exclusive(_sidecar(existing), sidecar.encode())
    return str(existing), False


def _existing_local(folder: Path, preferred: str) -> Path | None:
    """A stored object in a content-addressed folder, the preferred name first."""
    if (folder / preferred).is_file():
        return folder / preferred
    for path in sorted(folder.iterdir()):
        if (
            path.is_file()
            and not path.name.startswith(".")
            and not path.name.endswith(METADATA_SUFFIX)
        ):
            return path
    return None


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + METADATA_SUFFIX)


def _create_exclusive(target: Path, content: bytes) -> bool:
    """Write ``target`` only if it does not exist; False if it does. Readers never see a
    partial file: the bytes go to a temporary name first, then are hard-linked into place."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "xb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        try:  # a filesystem without hard links: exclusive create still never replaces
            with open(target, "xb") as handle:
                handle.write(content)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


# --- GCS lake ----------------------------------------------------------------------------


def _store_gcs(
    client: storage.Client, lake: str, name: str, data: bytes, metadata: dict[str, str]
) -> tuple[str, bool]:
    from google.api_core import exceptions
    from google.cloud.storage.retry import DEFAULT_RETRY

    bucket_name, prefix = split_gcs_uri(lake)
    object_name = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name
    bucket = client.bucket(bucket_name)
    sha256 = metadata["sha256"]
    try:
        existing = _existing_gcs(client, bucket_name, object_name)
        if existing is None:
            blob = bucket.blob(object_name)
            blob.metadata = metadata
            try:
                # ifGenerationMatch=0: succeed only if no live object has this name. That
                # also makes the upload idempotent, so the default retry policy is safe.
                blob.upload_from_file(
                    io.BytesIO(data),
                    size=len(data),
                    content_type="text/csv",
                    if_generation_match=0,
                    checksum="crc32c",
                    retry=DEFAULT_RETRY,
                )
                return gcs_uri(bucket_name, object_name), True
            except exceptions.PreconditionFailed:
                # Another writer (or our own retried request) created it first.
                existing = bucket.get_blob(object_name, retry=DEFAULT_RETRY)
                if existing is None:
                    raise IngestError(
                        f"upload of {gcs_uri(bucket_name, object_name)} was refused as "
                        "already existing, yet the object cannot be read"
                    ) from None
        found = (existing.metadata or {}).get("sha256")
        if found is None:  # stored by something else: check the bytes themselves
            found = hashlib.sha256(
                existing.download_as_bytes(checksum="crc32c", retry=DEFAULT_RETRY)
            ).hexdigest()
        if found != sha256:
            raise _conflict(gcs_uri(bucket_name, existing.name), found, sha256)
        return gcs_uri(bucket_name, existing.name), False
    except exceptions.NotFound:
        raise IngestError(f"lake bucket not found: gs://{bucket_name}") from None
    except exceptions.Forbidden as exc:
        raise IngestError(f"permission denied on gs://{bucket_name}: {exc.message}") from None
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise IngestError(f"cannot store in gs://{bucket_name}: {exc}") from None


def _existing_gcs(client: storage.Client, bucket_name: str, object_name: str):
    """The stored object in ``object_name``'s content-addressed folder, if any."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    folder = object_name.rpartition("/")[0] + "/"
    blobs = [  # skip "folder" placeholders that consoles create
        blob
        for blob in client.list_blobs(bucket_name, prefix=folder, retry=DEFAULT_RETRY)
        if not blob.name.endswith("/")
    ]
    for blob in blobs:
        if blob.name == object_name:
            return blob
    return blobs[0] if blobs else None
