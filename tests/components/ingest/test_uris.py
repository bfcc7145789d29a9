"""components.common.uris: classifying URIs and reading bytes from a path, URL or gs://."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from google.cloud import storage

from components.common import uris
from components.common.uris import (
    FetchError,
    basename,
    is_gcs_uri,
    is_http_url,
    is_local,
    local_path,
    read_bytes,
    split_gcs_uri,
)

from .conftest import WebServer


@pytest.mark.parametrize(
    ("uri", "gcs", "http", "local", "name"),
    [
        ("gs://b/raw/x.csv", True, False, False, "x.csv"),
        ("https://h.org/a/b%20c.csv?x=1", False, True, False, "b c.csv"),
        ("http://127.0.0.1:8/a.csv", False, True, False, "a.csv"),
        ("data/a.csv", False, False, True, "a.csv"),
        ("file:///tmp/z.csv", False, False, True, "z.csv"),
    ],
)
def test_classify_and_basename(uri: str, gcs: bool, http: bool, local: bool, name: str) -> None:
    assert (is_gcs_uri(uri), is_http_url(uri), is_local(uri)) == (gcs, http, local)
    assert basename(uri) == name


def test_split_gcs_uri() -> None:
    assert split_gcs_uri("gs://bucket/a/b.csv") == ("bucket", "a/b.csv")
    assert split_gcs_uri("gs://bucket") == ("bucket", "")
    with pytest.raises(ValueError, match="no bucket"):
        split_gcs_uri("gs:///a.csv")
    with pytest.raises(ValueError, match="not a gs:// URI"):
        split_gcs_uri("s3://bucket/a.csv")


def test_local_path_of_file_uri() -> None:
    assert local_path("file:///tmp/a%20b.csv") == Path("/tmp/a b.csv")


def test_read_local_and_missing(sample_csv: Path, sample_bytes: bytes, tmp_path: Path) -> None:
    assert read_bytes(str(sample_csv)) == sample_bytes
    assert read_bytes(sample_csv.as_uri()) == sample_bytes
    with pytest.raises(FetchError, match="source not found: .*nope.csv"):
        read_bytes(str(tmp_path / "nope.csv"))
    with pytest.raises(FetchError, match="is a directory"):
        read_bytes(str(tmp_path))


def test_read_url_streams_the_whole_file(web: WebServer, crypto_csv: Path) -> None:
    assert read_bytes(web.url("/ndd3/crypto-markets.csv")) == crypto_csv.read_bytes()


def test_http_error_status_is_named(web: WebServer) -> None:
    with pytest.raises(FetchError, match=r"HTTP 404 Not Found fetching http://127\.0\.0\.1"):
        read_bytes(web.url("/missing.csv"))
    assert web.requests == ["/missing.csv"]  # a 404 is not retried


def test_transient_5xx_is_retried(web: WebServer, sample_bytes: bytes) -> None:
    answers = [(503, "text/plain", b"busy"), (200, "text/csv", sample_bytes)]
    web.routes["/flaky.csv"] = lambda: answers.pop(0)
    assert read_bytes(web.url("/flaky.csv")) == sample_bytes
    assert web.requests == ["/flaky.csv", "/flaky.csv"]


def test_no_network_says_so_and_suggests_a_local_source(monkeypatch) -> None:
    monkeypatch.setattr(uris, "HTTP_RETRIES", 0)  # keep the test fast
    with socket.socket() as sock:  # a port with nobody listening: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError) as info:
        read_bytes(f"http://127.0.0.1:{port}/crypto-markets.csv")
    message = str(info.value)
    assert "cannot reach 127.0.0.1" in message
    assert "network connection" in message
    assert "SOURCE=<local path>" in message and "--source <local path>" in message


def test_read_gcs(gcs_client: storage.Client, bucket: storage.Bucket, sample_bytes: bytes) -> None:
    bucket.blob("in/prices.csv").upload_from_string(sample_bytes)
    uri = f"gs://{bucket.name}/in/prices.csv"
    assert read_bytes(uri, storage_client=gcs_client) == sample_bytes
    with pytest.raises(FetchError, match=f"source not found: gs://{bucket.name}/in/other.csv"):
        read_bytes(f"gs://{bucket.name}/in/other.csv", storage_client=gcs_client)
    with pytest.raises(FetchError, match="must name an object"):
        read_bytes(f"gs://{bucket.name}/in/", storage_client=gcs_client)
