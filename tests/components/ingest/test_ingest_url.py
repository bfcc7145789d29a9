"""ingest() from URL sources served by ``http.server`` on 127.0.0.1, into a local lake
and into a gs:// lake on gcp-storage-emulator: store, idempotent re-run, no overwrite,
checksum mismatch, missing columns, column mapping, transient 5xx and bodies cut short.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.cloud import storage
from urllib3.connectionpool import HTTPConnectionPool

from components.common import uris
from components.common.uris import FetchError
from components.ingest.ingest import (
    IngestError,
    IngestResult,
    raw_object_name,
    validate_csv,
)
from components.ingest.ingest import (
    run as ingest,
)
from tests.conftest import FULL_CSV_SHA256

from .conftest import MAPPED_HEADER, MAPPING, WebServer, mapped_csv


@dataclass
class Lake:
    """A lake of either kind, seen through the same few questions."""

    uri: str
    root: Path | None = None  # local lake
    client: storage.Client | None = None  # gs:// lake
    bucket: storage.Bucket | None = None
    prefix: str = ""

    def ingest(self, source: str, **kwargs) -> IngestResult:
        return ingest(source, self.uri, storage_client=self.client, **kwargs)

    def uri_of(self, name: str) -> str:
        """What ingest reports as lake_uri for the lake-relative ``name``."""
        if self.root is not None:
            return str(self.root / name)
        return f"gs://{self.bucket.name}/{self.prefix}{name}"

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Every stored file/object with (size, mtime_ns or generation): any write shows."""
        if self.root is not None:
            return {
                str(p.relative_to(self.root)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(self.root.rglob("*"))
                if p.is_file()
            }
        return {
            b.name.removeprefix(self.prefix): (b.size, b.generation)
            for b in self.client.list_blobs(self.bucket.name)
        }

    def read(self, name: str) -> bytes:
        if self.root is not None:
            return (self.root / name).read_bytes()
        return self.bucket.blob(self.prefix + name).download_as_bytes()

    def metadata(self, name: str) -> dict[str, str]:
        """The recorded metadata, as strings (GCS custom metadata is strings)."""
        if self.root is not None:
            sidecar = json.loads((self.root / f"{name}.metadata.json").read_text())
            return {k: str(v) for k, v in sidecar.items()}
        return self.bucket.get_blob(self.prefix + name).metadata

    def put(self, name: str, data: bytes) -> None:
        """Place an object by hand, as something other than ingest would."""
        if self.root is not None:
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            (self.root / name).write_bytes(data)
        else:
            self.bucket.blob(self.prefix + name).upload_from_string(data)

    def stored_names(self, name: str) -> list[str]:
        """What one stored object leaves in the lake (local lakes add a sidecar)."""
        return [name, f"{name}.metadata.json"] if self.root is not None else [name]


@pytest.fixture(params=["local", "gcs"])
def lake(request, tmp_path: Path) -> Lake:
    if request.param == "local":
        return Lake(uri=str(tmp_path / "lake"), root=tmp_path / "lake")
    client = request.getfixturevalue("gcs_client")
    bucket = request.getfixturevalue("bucket")
    return Lake(uri=f"gs://{bucket.name}/lake", client=client, bucket=bucket, prefix="lake/")


@pytest.fixture
def fast_retries(monkeypatch) -> None:
    """No backoff between HTTP retries, so exhausting them costs milliseconds."""
    monkeypatch.setattr(uris, "HTTP_BACKOFF", 0)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_url_source_is_stored_with_its_url(web: WebServer, lake: Lake, sample_bytes: bytes) -> None:
    web.routes["/data/prices.csv"] = (200, "text/csv", sample_bytes)
    url = web.url("/data/prices.csv")

    result = lake.ingest(url, expected_sha256=sha(sample_bytes))

    name = raw_object_name(sha(sample_bytes), "prices.csv")
    assert result.lake_uri == lake.uri_of(name)
    assert (result.source, result.sha256) == (url, sha(sample_bytes))
    assert (result.bytes, result.rows, result.stored_new) == (len(sample_bytes), 40, True)
    assert lake.read(name) == sample_bytes
    assert lake.metadata(name) == {
        "source": url,
        "sha256": sha(sample_bytes),
        "bytes": str(len(sample_bytes)),
        "rows": "40",
        "fetched_at": result.fetched_at,
    }
    assert sorted(lake.snapshot()) == lake.stored_names(name)  # nothing else written


def test_url_rerun_stores_nothing_new(web: WebServer, lake: Lake, sample_bytes: bytes) -> None:
    web.routes["/data/prices.csv"] = (200, "text/csv", sample_bytes)
    web.routes["/mirror/other-name.csv"] = (200, "text/csv", sample_bytes)

    first = lake.ingest(web.url("/data/prices.csv"))
    before = lake.snapshot()
    second = lake.ingest(web.url("/data/prices.csv"))
    # The same bytes from another URL under another file name: still the same content.
    third = lake.ingest(web.url("/mirror/other-name.csv"))

    assert web.requests == ["/data/prices.csv", "/data/prices.csv", "/mirror/other-name.csv"]
    assert (first.stored_new, second.stored_new, third.stored_new) == (True, False, False)
    assert first.lake_uri == second.lake_uri == third.lake_uri
    assert lake.snapshot() == before  # no new object, none rewritten (same mtime/generation)
    # The record still names the source that first stored the bytes.
    assert lake.metadata(raw_object_name(first.sha256, "prices.csv"))["source"] == web.url(
        "/data/prices.csv"
    )


def test_url_never_overwrites_other_content_at_the_name(
    web: WebServer, lake: Lake, sample_bytes: bytes
) -> None:
    web.routes["/data/prices.csv"] = (200, "text/csv", sample_bytes)
    name = raw_object_name(sha(sample_bytes), "prices.csv")
    squatter = b"something else\n"
    lake.put(name, squatter)
    before = lake.snapshot()

    with pytest.raises(IngestError) as info:
        lake.ingest(web.url("/data/prices.csv"))

    assert f"refusing to overwrite {lake.uri_of(name)}: it exists" in str(info.value)
    assert f"(sha256 {sha(squatter)}, expected {sha(sample_bytes)})" in str(info.value)
    assert lake.snapshot() == before
    assert lake.read(name) == squatter


def test_url_checksum_mismatch_stores_nothing(
    web: WebServer, lake: Lake, sample_bytes: bytes
) -> None:
    web.routes["/data/prices.csv"] = (200, "text/csv", sample_bytes)
    url = web.url("/data/prices.csv")
    with pytest.raises(IngestError) as info:
        lake.ingest(url, expected_sha256=FULL_CSV_SHA256)
    assert str(info.value) == (
        f"{url}: checksum mismatch: expected {FULL_CSV_SHA256}, got {sha(sample_bytes)}"
    )
    assert lake.snapshot() == {}


def test_url_missing_columns_are_named(web: WebServer, lake: Lake) -> None:
    body = b"slug,symbol,name,open,high,low,volume\nbitcoin,BTC,Bitcoin,1,2,0.5,7\n"
    web.routes["/data/no-close.csv"] = (200, "text/csv", body)
    url = web.url("/data/no-close.csv")
    with pytest.raises(IngestError) as info:
        lake.ingest(url)
    assert str(info.value).startswith(f"{url}: missing columns: close, date;")
    assert lake.snapshot() == {}


def test_url_column_mapping(web: WebServer, lake: Lake, bitcoin_csv: Path) -> None:
    data = mapped_csv(bitcoin_csv)
    assert data.startswith(MAPPED_HEADER.encode() + b"\n")
    web.routes["/exports/my%20prices.csv"] = (200, "text/plain; charset=utf-8", data)
    url = web.url("/exports/my%20prices.csv")

    with pytest.raises(IngestError, match="missing columns: slug; header is: Date, open"):
        lake.ingest(url)  # without the mapping the header does not fit
    assert lake.snapshot() == {}

    result = lake.ingest(url, column_mapping=MAPPING)
    name = raw_object_name(sha(data), "my_prices.csv")  # a safe object name
    assert result.lake_uri == lake.uri_of(name)
    assert (result.rows, result.stored_new, result.source) == (30, True, url)
    assert lake.read(name) == data  # stored as it came, header untouched
    assert lake.metadata(name)["source"] == url
    # The same mapping given as JSON text (as the CLI and KFP pass it) finds it stored.
    again = lake.ingest(url, column_mapping=json.dumps(MAPPING))
    assert again.stored_new is False and again.lake_uri == result.lake_uri


def test_url_transient_503_is_retried(web: WebServer, lake: Lake, sample_bytes: bytes) -> None:
    answers = [(503, "text/plain", b"busy"), (200, "text/csv", sample_bytes)]
    web.routes["/flaky.csv"] = lambda: answers.pop(0)
    result = lake.ingest(web.url("/flaky.csv"))
    assert web.requests == ["/flaky.csv", "/flaky.csv"]
    assert result.stored_new is True
    assert lake.read(raw_object_name(sha(sample_bytes), "flaky.csv")) == sample_bytes


def test_url_persistent_503_fails_after_the_retries(
    web: WebServer, lake: Lake, fast_retries: None
) -> None:
    web.routes["/down.csv"] = (503, "text/plain", b"busy")
    url = web.url("/down.csv")
    with pytest.raises(FetchError, match=re.escape(f"HTTP 503 Service Unavailable fetching {url}")):
        lake.ingest(url)
    assert web.requests == ["/down.csv"] * (uris.HTTP_RETRIES + 1)
    assert lake.snapshot() == {}


# --- a body cut short: Content-Length announces more than the server sends ---------------


def cut(data: bytes) -> bytes:
    """``data`` cut in the middle of a row, as a dropped connection leaves it."""
    return data[: len(data) // 2 + 7]


@pytest.fixture
def lenient_urllib3(monkeypatch) -> None:
    """urllib3 as 1.26 behaves (requests accepts it): no Content-Length check of its own,
    so a short body comes back as if complete and only ingest's own check is left."""
    original = HTTPConnectionPool._make_request

    def make_request(self, *args, **kwargs):
        kwargs["enforce_content_length"] = False
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HTTPConnectionPool, "_make_request", make_request)


@pytest.mark.parametrize("urllib3_checks", [True, False], ids=["urllib3-2", "urllib3-lenient"])
def test_body_cut_short_is_an_error_and_stores_nothing(
    web: WebServer, lake: Lake, sample_bytes: bytes, request, urllib3_checks: bool
) -> None:
    if not urllib3_checks:
        request.getfixturevalue("lenient_urllib3")
    short = cut(sample_bytes)
    assert validate_csv(short) > 0  # the short file alone would pass validation
    web.routes["/data/prices.csv"] = (200, "text/csv", short, len(sample_bytes))
    url = web.url("/data/prices.csv")

    with pytest.raises(FetchError) as info:
        lake.ingest(url)

    message = str(info.value)
    assert f"download of {url} was cut short on each of {uris.HTTP_RETRIES + 1} attempts" in message
    if urllib3_checks:
        detail = f"IncompleteRead({len(short)} bytes read, {len(sample_bytes) - len(short)} more"
    else:
        detail = f"got {len(short)} of the {len(sample_bytes)} bytes announced by Content-Length"
    assert detail in message
    assert web.requests == ["/data/prices.csv"] * (uris.HTTP_RETRIES + 1)  # retried
    assert lake.snapshot() == {}


@pytest.mark.parametrize("urllib3_checks", [True, False], ids=["urllib3-2", "urllib3-lenient"])
def test_body_cut_short_once_is_fetched_again(
    web: WebServer, lake: Lake, sample_bytes: bytes, request, urllib3_checks: bool
) -> None:
    if not urllib3_checks:
        request.getfixturevalue("lenient_urllib3")
    answers = [
        (200, "text/csv", cut(sample_bytes), len(sample_bytes)),
        (200, "text/csv", sample_bytes),
    ]
    web.routes["/data/prices.csv"] = lambda: answers.pop(0)

    result = lake.ingest(web.url("/data/prices.csv"))

    assert web.requests == ["/data/prices.csv", "/data/prices.csv"]
    assert (result.sha256, result.bytes, result.rows) == (sha(sample_bytes), len(sample_bytes), 40)
    assert lake.read(raw_object_name(sha(sample_bytes), "prices.csv")) == sample_bytes
