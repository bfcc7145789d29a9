"""ingest() with a gs:// lake and gs:// sources, against gcp-storage-emulator over HTTP.

The emulator ignores ``ifGenerationMatch`` (it would overwrite), so the 412 path,
i.e. a concurrent writer creating the object between our check and our upload, is
exercised against a loopback stub of the JSON API that answers like GCS does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import google_crc32c
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from components.ingest.ingest import IngestError, raw_object_name
from components.ingest.ingest import run as ingest
from tests.conftest import FULL_CSV_SHA256

from .conftest import MAPPING, PROJECT, mapped_csv


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def objects(client: storage.Client, bucket: storage.Bucket) -> dict[str, int]:
    """Every object in the bucket with its generation: any overwrite shows."""
    return {b.name: b.generation for b in client.list_blobs(bucket.name)}


def test_stores_with_metadata_and_verified_checksum(
    gcs_client: storage.Client, bucket: storage.Bucket, crypto_csv: Path
) -> None:
    sent = []
    gcs_client._http.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))

    result = ingest(
        str(crypto_csv),
        f"gs://{bucket.name}/crypto/",
        expected_sha256=FULL_CSV_SHA256,
        storage_client=gcs_client,
    )

    name = "crypto/" + raw_object_name(FULL_CSV_SHA256, "crypto-markets.csv")
    assert result.lake_uri == f"gs://{bucket.name}/{name}"
    assert (result.rows, result.bytes, result.stored_new) == (29_999, 2_645_563, True)
    blob = bucket.get_blob(name)
    data = crypto_csv.read_bytes()
    assert blob.download_as_bytes() == data
    assert blob.content_type == "text/csv"
    assert blob.crc32c == crc32c_b64(data)  # the server's checksum of what it received
    assert blob.metadata == {
        "source": str(crypto_csv.resolve()),
        "sha256": FULL_CSV_SHA256,
        "bytes": "2645563",
        "rows": "29999",
        "fetched_at": result.fetched_at,
    }
    # The upload asked for "create only" and carried the crc32c for the server to check.
    uploads = [r for r in sent if r.method == "POST" and "/upload/" in r.url]
    assert len(uploads) == 1
    assert parse_qs(urlparse(uploads[0].url).query)["ifGenerationMatch"] == ["0"]
    assert f'"crc32c": "{crc32c_b64(data)}"'.encode() in uploads[0].body


def test_rerun_with_same_bytes_stores_nothing_new(
    gcs_client: storage.Client, bucket: storage.Bucket, sample_csv: Path
) -> None:
    lake = f"gs://{bucket.name}/lake"
    first = ingest(str(sample_csv), lake, storage_client=gcs_client)
    before = objects(gcs_client, bucket)
    second = ingest(str(sample_csv), lake, storage_client=gcs_client)
    assert (first.stored_new, second.stored_new) == (True, False)
    assert second.lake_uri == first.lake_uri
    assert objects(gcs_client, bucket) == before  # same object, same generation
    assert len(before) == 1


def test_never_overwrites_a_different_object(
    gcs_client: storage.Client, bucket: storage.Bucket, sample_csv: Path
) -> None:
    sha = hashlib.sha256(sample_csv.read_bytes()).hexdigest()
    name = raw_object_name(sha, "sample.csv")
    bucket.blob(name).upload_from_string(b"something else\n")
    before = objects(gcs_client, bucket)

    with pytest.raises(IngestError, match=f"refusing to overwrite gs://{bucket.name}/{name}"):
        ingest(str(sample_csv), f"gs://{bucket.name}", storage_client=gcs_client)
    assert objects(gcs_client, bucket) == before
    assert bucket.blob(name).download_as_bytes() == b"something else\n"


def test_existing_object_without_metadata_is_verified_by_content(
    gcs_client: storage.Client, bucket: storage.Bucket, sample_csv: Path
) -> None:
    data = sample_csv.read_bytes()
    name = raw_object_name(hashlib.sha256(data).hexdigest(), "sample.csv")
    bucket.blob(name).upload_from_string(data)  # e.g. copied in by hand, no metadata
    result = ingest(str(sample_csv), f"gs://{bucket.name}", storage_client=gcs_client)
    assert result.stored_new is False and result.lake_uri == f"gs://{bucket.name}/{name}"


def test_folder_placeholder_is_not_taken_for_the_object(
    gcs_client: storage.Client, bucket: storage.Bucket, sample_csv: Path
) -> None:
    folder = raw_object_name(hashlib.sha256(sample_csv.read_bytes()).hexdigest(), "")
    bucket.blob(folder).upload_from_string(b"")  # what "create folder" in a console leaves
    result = ingest(str(sample_csv), f"gs://{bucket.name}", storage_client=gcs_client)
    assert result.stored_new is True
    assert result.lake_uri == f"gs://{bucket.name}/{folder}sample.csv"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty file"),
        (b"<html><head><title>Sign in</title></head></html>", "got HTML, not CSV"),
        (b"slug,open,high,low,volume\nbitcoin,1,2,0.5,0\n", "missing columns: close, date;"),
    ],
    ids=["empty", "html", "missing-columns"],
)
def test_bad_input_stores_nothing(
    gcs_client: storage.Client, bucket: storage.Bucket, tmp_path: Path, body: bytes, message: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(body)
    with pytest.raises(IngestError) as info:
        ingest(str(source), f"gs://{bucket.name}/lake", storage_client=gcs_client)
    assert message in str(info.value)
    assert objects(gcs_client, bucket) == {}


def test_checksum_mismatch_stores_nothing(
    gcs_client: storage.Client, bucket: storage.Bucket, sample_csv: Path
) -> None:
    with pytest.raises(IngestError, match=f"checksum mismatch: expected {FULL_CSV_SHA256}, got"):
        ingest(
            str(sample_csv),
            f"gs://{bucket.name}",
            expected_sha256=FULL_CSV_SHA256,
            storage_client=gcs_client,
        )
    assert objects(gcs_client, bucket) == {}


def test_gcs_source_with_column_mapping(
    gcs_client: storage.Client, bucket: storage.Bucket, bitcoin_csv: Path, tmp_path: Path
) -> None:
    data = mapped_csv(bitcoin_csv)
    bucket.blob("inbox/btc.csv").upload_from_string(data)
    source = f"gs://{bucket.name}/inbox/btc.csv"

    to_gcs = ingest(
        source, f"gs://{bucket.name}/lake", column_mapping=MAPPING, storage_client=gcs_client
    )
    to_local = ingest(
        source, str(tmp_path / "lake"), column_mapping=MAPPING, storage_client=gcs_client
    )

    sha = hashlib.sha256(data).hexdigest()
    assert to_gcs.lake_uri == f"gs://{bucket.name}/lake/{raw_object_name(sha, 'btc.csv')}"
    assert bucket.get_blob(f"lake/{raw_object_name(sha, 'btc.csv')}").metadata["source"] == source
    assert Path(to_local.lake_uri).read_bytes() == data
    assert to_gcs.rows == to_local.rows == 30


def test_missing_lake_bucket_is_named(gcs_client: storage.Client, sample_csv: Path) -> None:
    with pytest.raises(IngestError, match="lake bucket not found: gs://no-such-lake"):
        ingest(str(sample_csv), "gs://no-such-lake/x", storage_client=gcs_client)


# --- a concurrent writer: GCS answers 412 to ifGenerationMatch=0 --------------------------


class RacedGcs(BaseHTTPRequestHandler):
    """Just enough JSON API: the listing is empty (nothing there yet), the upload loses
    the race (412, as GCS answers ifGenerationMatch=0 when the object exists), and the
    object then reads back with the winner's metadata (``winner_sha256``)."""

    winner_sha256 = ""
    uploads: list[str] = []

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = urlparse(self.path).path
        bucket, _, name = path.removeprefix("/storage/v1/b/").partition("/o")
        if not name:  # a listing
            self._reply(200, {"kind": "storage#objects"})
            return
        self._reply(
            200,
            {
                "kind": "storage#object",
                "bucket": bucket,
                "name": unquote(name.lstrip("/")),
                "generation": "7",
                "size": "1",
                "metadata": {"sha256": self.winner_sha256},
            },
        )

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).uploads.append(self.path)
        self._reply(
            412,
            {
                "error": {
                    "code": 412,
                    "message": "At least one of the pre-conditions you specified did not hold.",
                    "errors": [{"reason": "conditionNotMet"}],
                }
            },
        )

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def raced_client(monkeypatch) -> Iterator[storage.Client]:
    server = HTTPServer(("127.0.0.1", 0), RacedGcs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_address[1]}")
    RacedGcs.uploads = []
    yield storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    server.shutdown()
    server.server_close()
    thread.join()


def test_lost_race_with_same_bytes_is_already_stored(raced_client, sample_csv: Path) -> None:
    RacedGcs.winner_sha256 = hashlib.sha256(sample_csv.read_bytes()).hexdigest()
    result = ingest(str(sample_csv), "gs://lake", storage_client=raced_client)
    assert len(RacedGcs.uploads) == 1 and "ifGenerationMatch=0" in RacedGcs.uploads[0]
    assert result.stored_new is False
    assert result.lake_uri == f"gs://lake/{raw_object_name(RacedGcs.winner_sha256, 'sample.csv')}"


def test_lost_race_with_other_bytes_is_an_error(raced_client, sample_csv: Path) -> None:
    RacedGcs.winner_sha256 = "0" * 64
    with pytest.raises(IngestError, match="refusing to overwrite gs://lake/raw/sha256="):
        ingest(str(sample_csv), "gs://lake", storage_client=raced_client)
    assert len(RacedGcs.uploads) == 1  # 412 is final: no retry, no second attempt
