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

import codecs
import contextlib
import csv
import errno
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.results import (
    ParameterError,
    StepResult,
    number_problem,
    raise_for_problems,
)
from components.common.schema import SchemaError, parse_column_mapping, resolve_columns
from components.common.uris import (
    DEFAULT_DEADLINE_S,
    DEFAULT_MIN_BYTES_PER_S,
    HTTP_RETRIES,
    BodyCutShort,
    basename,
    cut_short_message,
    gcs_uri,
    is_gcs_uri,
    is_http_url,
    is_local,
    iter_chunks,
    local_dir_problem,
    local_file_problem,
    local_path,
    scheme_problem,
    split_gcs_uri,
    storage_client_or_default,
    unsupported_scheme,
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
    return validate_stream([data], column_mapping)


_UTF32_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32 (little-endian)",
    b"\x00\x00\xfe\xff": "UTF-32 (big-endian)",
}
_UTF16_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}
#: Bytes of the start of a file looked at for HTML, compression and other encodings.
_HEAD_BYTES = 1024


def _other_encoding(head: bytes) -> str:
    """'UTF-16 (little-endian)' etc. when the start of the file says so (BOM, or NUL bytes
    where an ASCII text in that encoding has them); '' otherwise."""
    for table in (_UTF32_BOMS, _UTF16_BOMS):
        for bom, name in table.items():
            if head.startswith(bom):
                return name
    sample = head[:64] if len(head) >= 8 else b""
    if sample and all(sample[i] == 0 for i in range(len(sample)) if i % 4):
        return "UTF-32 (little-endian)"
    if sample and all(sample[i] == 0 for i in range(len(sample)) if i % 4 != 3):
        return "UTF-32 (big-endian)"
    if sample and all(b == 0 for b in sample[1::2]) and any(sample[::2]):
        return "UTF-16 (little-endian)"
    if sample and all(b == 0 for b in sample[::2]) and any(sample[1::2]):
        return "UTF-16 (big-endian)"
    return ""


def _check_head(head: bytes) -> None:
    encoding = _other_encoding(head)
    if encoding:
        raise IngestError(
            f"the file is {encoding} text, not UTF-8: convert it first, e.g. "
            f"`iconv -f {encoding.split()[0]} -t UTF-8 in.csv > out.csv`"
        )
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(_HTML_STARTS) or (start.startswith(b"<") and b"<html" in start):
        raise IngestError(
            "got HTML, not CSV (a web page such as a 404 or sign-in page; "
            "point the source at the raw file)"
        )
    if head.startswith(b"\x1f\x8b"):
        raise IngestError("got gzip-compressed data, not CSV; decompress it first")


def _delimiter_hint(header: list[str], column_mapping) -> str:
    """A sentence when the header would fit with another delimiter ('' otherwise)."""
    if len(header) != 1:
        return ""
    for delimiter, name in ((";", "semicolon (';')"), ("\t", "tab"), ("|", "pipe ('|')")):
        fields = header[0].split(delimiter)
        if len(fields) > 1:
            try:
                resolve_columns(fields, column_mapping)
            except SchemaError:
                continue
            return (
                f"the file is {name}-separated, not comma-separated: its header "
                f"{header[0]!r} has the required columns when split on {delimiter!r}. "
                "Save it with commas as the delimiter (e.g. a spreadsheet's 'CSV (comma "
                "delimited)')"
            )
    return ""


def validate_stream(
    chunks: Iterable[bytes], column_mapping: str | Mapping[str, str] | None = None
) -> int:
    """``validate_csv`` over a stream of byte chunks, consumed to its end in one pass and
    holding about one chunk at a time: the start is checked for HTML, compression and
    UTF-16/32; every chunk for NUL bytes and UTF-8; the records with the csv module."""
    state = {"offset": 0, "text": False}
    source = iter(chunks)
    first: list[bytes] = []
    size = 0
    for chunk in source:
        first.append(chunk)
        size += len(chunk)
        if size >= _HEAD_BYTES:
            break
    head = b"".join(first)[:_HEAD_BYTES] if len(first) != 1 else first[0][:_HEAD_BYTES]
    if head:
        _check_head(head)

    def lines() -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        pending = ""
        for chunk in itertools.chain(first, source):
            nul = chunk.find(b"\0")
            if nul >= 0:
                raise IngestError(
                    f"got binary data, not CSV (NUL byte at offset {state['offset'] + nul})"
                )
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise IngestError(
                    f"not a UTF-8 text CSV: undecodable byte at offset "
                    f"{state['offset'] + exc.start - len(decoder.getstate()[0])} "
                    "(binary or garbled data, or another encoding)"
                ) from None
            state["offset"] += len(chunk)
            if not state["text"] and text.strip():
                state["text"] = True
            pieces = (pending + text).split("\n")
            pending = pieces.pop()
            for piece in pieces:
                yield piece + "\n"
        try:
            pending += decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise IngestError(
                "not a UTF-8 text CSV: undecodable byte at offset "
                f"{state['offset'] + exc.start - len(exc.object)} "
                "(binary or garbled data, or another encoding)"
            ) from None
        if pending:
            yield pending

    reader = parser = csv.reader(lines(), strict=True)
    try:
        header = next((record for record in reader if record), None)
        if header is not None and not "".join(header).strip():
            rest = [record for record in itertools.islice(reader, 1)]  # is there more?
            if not rest and not state["text"]:
                header = None
            elif rest:
                reader = itertools.chain(rest, reader)  # type: ignore[assignment]
        if header is None:
            if state["offset"] == 0:
                raise IngestError("empty file (0 bytes)")
            if not state["text"]:
                raise IngestError(f"empty file ({state['offset']} bytes of whitespace only)")
            raise IngestError("empty file (no CSV records)")
        try:
            resolve_columns(header, column_mapping)
        except SchemaError as exc:
            hint = _delimiter_hint(header, column_mapping)
            raise IngestError(hint or str(exc)) from None
        rows = sum(1 for record in reader if record)
    except csv.Error as exc:
        raise IngestError(f"does not parse as CSV: line {parser.line_num}: {exc}") from None
    if rows == 0:
        raise IngestError("the CSV has a header but no data rows")
    return rows


def check_parameters(
    *,
    source: object = None,
    lake: object = None,
    expected_sha256: object = None,
    column_mapping: str | Mapping[str, str] | None = None,
    deadline_s: object = None,
    min_bytes_per_s: object = None,
    raw_path: object = None,
) -> dict[str, str]:
    """``{parameter: problem}`` of the given (not None) parameters of ``run`` (source and
    lake must not be empty; a local lake must be a folder this user can create or write;
    ``raw_path`` a file this user can write, not a folder). Nothing is fetched."""
    problems: dict[str, str] = {}
    if source is not None and not source:
        problems["source"] = "no source given"
    elif source is not None and (problem := scheme_problem("source", str(source))):
        problems["source"] = problem
    if lake is None:
        pass
    elif not lake:
        problems["lake"] = "no lake given (a gs://bucket/prefix or a local directory)"
    elif not isinstance(lake, str) or is_http_url(lake) or unsupported_scheme(lake):
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
    if deadline_s is not None and (problem := number_problem("deadline_s", deadline_s, above=0)):
        problems["deadline_s"] = problem
    if min_bytes_per_s is not None and (
        problem := number_problem("min_bytes_per_s", min_bytes_per_s, at_least=0, finite=True)
    ):
        problems["min_bytes_per_s"] = problem
    if raw_path and (problem := local_file_problem("raw_path", str(raw_path))):
        problems["raw_path"] = problem
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
    deadline_s: float = DEFAULT_DEADLINE_S,
    min_bytes_per_s: float = DEFAULT_MIN_BYTES_PER_S,
) -> IngestResult:
    """Fetch ``source``, validate it, store it in ``lake`` unless already there.

    ``expected_sha256`` defaults to DEFAULT_SHA256 when ``source`` is DEFAULT_SOURCE.
    ``raw_path`` (e.g. a KFP Dataset path), when given, receives a byte-for-byte copy.
    ``storage_client`` is used for gs:// sources and lakes (default: ADC client).
    The source is read once, as a stream: hashed, validated and written to a staged file
    as it arrives (memory stays about one chunk whatever the size), which then goes into
    the lake once. ``deadline_s`` bounds the whole download and ``min_bytes_per_s`` its
    average rate (after ``uris.RATE_GRACE_S``); a staged file is removed on failure, and
    one a killed run left is swept by the next run.
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
            deadline_s=deadline_s,
            min_bytes_per_s=min_bytes_per_s,
            raw_path=raw_path,
        )
    )
    if is_local(source):  # record where the bytes came from, independent of the cwd
        source = os.path.abspath(local_path(source))
    checksum = expected_checksum(source, expected_sha256)
    fetched_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name_in_lake = _safe_filename(basename(source))
    gcs_lake = is_gcs_uri(lake)
    staging = Path(tempfile.gettempdir()) if gcs_lake else local_path(lake) / RAW_DIR
    created = [] if gcs_lake else [p for p in (staging, *staging.parents) if not p.exists()]
    if not gcs_lake:
        try:
            staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IngestError(
                f"cannot create lake folder {staging}: {exc.strerror or exc}"
            ) from None
    sweep_staging(staging)
    try:
        staged, sha256, size, rows = _stage(
            source, staging, column_mapping, storage_client, deadline_s, min_bytes_per_s
        )
    except BaseException:
        for folder in created:  # nothing stored: not even the folders stay
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    try:
        if checksum is not None and sha256 != checksum:
            raise IngestError(f"{source}: checksum mismatch: expected {checksum}, got {sha256}")
        name = raw_object_name(sha256, name_in_lake)
        result = IngestResult("", sha256, size, rows, source, fetched_at, stored_new=True)
        if gcs_lake:
            client = storage_client_or_default(storage_client)
            lake_uri, stored_new = _store_gcs(client, lake, name, staged, result.object_metadata())
        else:
            lake_uri, stored_new = _store_local(local_path(lake), name, staged, result)
        if raw_path:
            out = Path(raw_path)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged, out)
    finally:
        staged.unlink(missing_ok=True)
    log.info(
        "%s %s (%d rows, sha256 %s)",
        "stored" if stored_new else "already in the lake:",
        lake_uri,
        rows,
        sha256,
    )
    return replace(result, lake_uri=lake_uri, stored_new=stored_new)


#: Name prefix of a download being staged (in ``<lake>/raw/`` or the temp folder).
STAGING_PREFIX = ".ingest-"
#: A staged file not written to for this long belongs to a run that died: swept.
STALE_STAGING_S = 3600.0


def sweep_staging(folder: Path, older_than_s: float = STALE_STAGING_S) -> int:
    """Remove staged downloads that a killed run left in ``folder`` (those not modified for
    ``older_than_s``: a download in progress writes to its file all the time). Returns
    how many were removed."""
    import time

    removed = 0
    limit = time.time() - older_than_s
    for path in folder.glob(f"{STAGING_PREFIX}*.tmp"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # another run swept it
    if removed:
        log.info("removed %d staged download(s) a killed run left in %s", removed, folder)
    return removed


def _stage(
    source: str,
    folder: Path,
    column_mapping,
    storage_client,
    deadline_s: float,
    min_bytes_per_s: float,
) -> tuple[Path, str, int, int]:
    """Stream ``source`` once into a new file in ``folder`` while hashing and validating it
    (memory: about one chunk). Returns (path, sha256, bytes, rows). On any failure the
    file is removed; an http body cut short is requested again (``HTTP_RETRIES``)."""
    for attempt in range(HTTP_RETRIES + 1):
        path = folder / f"{STAGING_PREFIX}{uuid.uuid4().hex}.tmp"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "xb") as handle:

                def tee(handle=handle, digest=digest):
                    nonlocal size
                    for chunk in iter_chunks(
                        source,
                        storage_client=storage_client,
                        deadline_s=deadline_s,
                        min_bytes_per_s=min_bytes_per_s,
                    ):
                        digest.update(chunk)
                        handle.write(chunk)
                        size += len(chunk)
                        yield chunk

                try:
                    rows = validate_stream(tee(), column_mapping)
                except IngestError as exc:
                    raise IngestError(f"{source}: {exc}") from None
                handle.flush()
                os.fsync(handle.fileno())
            return path, digest.hexdigest(), size, rows
        except BodyCutShort as exc:
            path.unlink(missing_ok=True)
            if attempt == HTTP_RETRIES:
                raise BodyCutShort(cut_short_message(source, str(exc))) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    raise AssertionError("unreachable")


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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _link_exclusive(staged: Path, target: Path) -> bool:
    """Put the complete staged file at ``target`` only if nothing is there (a hard link,
    so the lake's copy appears whole and is written once); False if something is."""
    try:
        os.link(staged, target)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(staged, tmp)  # a filesystem without hard links
        try:
            return _link_or_create(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return True


def _link_or_create(tmp: Path, target: Path) -> bool:
    try:
        with open(target, "xb") as out, open(tmp, "rb") as src:
            shutil.copyfileobj(src, out)
    except FileExistsError:
        return False
    return True


def _store_local(lake_dir: Path, name: str, staged: Path, result: IngestResult) -> tuple[str, bool]:
    target = lake_dir / name
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IngestError(f"cannot create lake folder {folder}: {exc.strerror or exc}") from None
    sidecar = json.dumps({k: getattr(result, k) for k in _METADATA_KEYS}, indent=2) + "\n"
    existing = _existing_local(folder, target.name)
    if existing is None:
        if _link_exclusive(staged, target):
            _create_exclusive(_sidecar(target), sidecar.encode())
            return str(target), True
        existing = target  # another writer got there between the check and the link
    found = _file_sha256(existing)
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
    client: storage.Client, lake: str, name: str, staged: Path, metadata: dict[str, str]
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
                with open(staged, "rb") as handle:
                    blob.upload_from_file(
                        handle,
                        size=staged.stat().st_size,
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
