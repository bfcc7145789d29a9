"""Fixtures for ingest: a GCS emulator over HTTP, a loopback web server, small CSVs.

The emulator is ``gcp-storage-emulator`` in this process, spoken to by the real
google-cloud-storage client over HTTP. The web server is ``http.server`` on 127.0.0.1.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

PROJECT = "ingest-test"
#: (status, content type, body), or that plus the Content-Length to announce (larger
#: than the body: the server closes the connection early); or a callable returning one
#: of these per request.
Answer = tuple[int, str, bytes] | tuple[int, str, bytes, int]
Route = Answer | Callable[[], Answer]

#: A header as another tool writes it, and the mapping that makes it fit the schema.
MAPPED_HEADER = "Date,open,high,low,close,volume,Name,Symbol"
MAPPING = {"date": "Date", "slug": "Name", "symbol": "Symbol"}


def mapped_csv(bitcoin_csv: Path, rows: int = 30) -> bytes:
    """Real Bitcoin rows rewritten with another tool's column names and order."""
    lines = bitcoin_csv.read_text().splitlines()
    header = lines[0].split(",")
    col = {name: header.index(name) for name in header}
    out = [MAPPED_HEADER]
    for line in lines[1 : rows + 1]:
        f = line.split(",")
        out.append(
            ",".join(
                f[col[c]]
                for c in ("date", "open", "high", "low", "close", "volume", "slug", "symbol")
            )
        )
    return ("\n".join(out) + "\n").encode()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """Base URL of an in-memory GCS emulator; STORAGE_EMULATOR_HOST points at it."""
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    # Port 0 lets the OS choose a free port; read back the one bound.
    port = server._api._httpd.server_address[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", url)
        yield url
    server.stop()


@pytest.fixture
def gcs_client(gcs_emulator: str) -> storage.Client:
    return storage.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture
def bucket(gcs_client: storage.Client) -> storage.Bucket:
    """A fresh, empty bucket per test."""
    return gcs_client.create_bucket(f"lake-{uuid.uuid4().hex[:12]}")


class WebServer:
    """A loopback HTTP server answering GETs from ``routes``; unknown paths get 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        routes, requests = self.routes, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                requests.append(self.path)
                route = routes.get(self.path, (404, "text/plain", b"404: Not Found"))
                status, content_type, body, *announced = route() if callable(route) else route
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(announced[0] if announced else len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def web(crypto_csv: Path) -> Iterator[WebServer]:
    """Serves the real shared CSV at /ndd3/crypto-markets.csv (as GitHub raw does, as
    text/plain), an HTML sign-in page at /login and an empty body at /empty.csv."""
    server = WebServer()
    server.routes["/ndd3/crypto-markets.csv"] = (
        200,
        "text/plain; charset=utf-8",
        crypto_csv.read_bytes(),
    )
    server.routes["/login"] = (
        200,
        "text/html; charset=utf-8",
        b"<!DOCTYPE html>\n<html><head><title>Sign in to GitHub</title></head>"
        b"<body><form>...</form></body></html>\n",
    )
    server.routes["/empty.csv"] = (200, "text/csv", b"")
    yield server
    server.close()


@pytest.fixture(scope="session")
def sample_bytes(crypto_csv: Path) -> bytes:
    """The header and first 40 rows of the real file."""
    lines = crypto_csv.read_bytes().split(b"\n")
    return b"\n".join(lines[:41]) + b"\n"


@pytest.fixture
def sample_csv(tmp_path: Path, sample_bytes: bytes) -> Path:
    path = tmp_path / "sample.csv"
    path.write_bytes(sample_bytes)
    return path
