"""Where a file lives: an http(s) URL, a ``gs://`` URI or a local path; and reading it.

Shared by the steps that accept a user-chosen input (ingest, transform, train).
Google Cloud Storage goes through google-cloud-storage with its default retry policy;
URLs through requests with retries for transient failures (connection errors, 429, 5xx,
a body cut short before its Content-Length).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:  # imported lazily at run time: a local run needs neither
    import requests
    from google.cloud import storage

#: Attempts after the first for transient HTTP failures (connect errors, 429, 5xx).
HTTP_RETRIES = 3
#: Seconds: urllib3 waits 0, 2x, 4x this between successive retries.
HTTP_BACKOFF = 0.5
#: (connect, read) timeouts in seconds for one HTTP request.
HTTP_TIMEOUT = (10.0, 60.0)
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A source could not be read; the message says what to do about it."""


def is_gcs_uri(uri: str) -> bool:
    return uri.startswith("gs://")


def is_http_url(uri: str) -> bool:
    return uri.startswith(("https://", "http://"))


def is_local(uri: str) -> bool:
    """A path on this machine (plain or ``file://``), i.e. neither a URL nor a gs:// URI."""
    return not (is_gcs_uri(uri) or is_http_url(uri))


def local_path(uri: str) -> Path:
    """The filesystem path of a plain path or a ``file://`` URI."""
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri).expanduser()


def local_dir_problem(name: str, uri: str) -> str:
    """'' if the local folder ``uri`` exists or can be created, and can be written; else a
    sentence naming ``name`` and the reason (checked without creating anything)."""
    import os

    path = local_path(uri)
    if path.exists() and not path.is_dir():
        return f"{name} {path} exists and is not a directory"
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{name} {path} cannot be created: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{name} {path} cannot be written: {ancestor} is not writable by this user"
    return ""


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``; the object part may be empty."""
    if not is_gcs_uri(uri):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI has no bucket: {uri!r}")
    return bucket, name


def gcs_uri(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}"


def basename(uri: str) -> str:
    """The last path segment of a URL, gs:// URI or path ('' when there is none)."""
    if is_http_url(uri):
        return unquote(urlparse(uri).path.rstrip("/").rpartition("/")[2])
    if is_gcs_uri(uri):
        return split_gcs_uri(uri)[1].rstrip("/").rpartition("/")[2]
    return local_path(uri).name


def read_bytes(uri: str, *, storage_client: storage.Client | None = None) -> bytes:
    """The whole content of ``uri``. Raises FetchError with an actionable message."""
    if is_http_url(uri):
        return _read_http(uri)
    if is_gcs_uri(uri):
        return _read_gcs(uri, storage_client)
    path = local_path(uri)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FetchError(f"source not found: {path}") from None
    except IsADirectoryError:
        raise FetchError(f"source is a directory, not a file: {path}") from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}") from None


def storage_client_or_default(client: storage.Client | None) -> storage.Client:
    """``client``, or a client from Application Default Credentials (or the emulator
    named by ``STORAGE_EMULATOR_HOST``)."""
    if client is not None:
        return client
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    try:
        return storage.Client()
    except DefaultCredentialsError as exc:
        raise FetchError(
            "no Google Cloud credentials for gs:// access: run "
            "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS "
            f"({exc})"
        ) from None


def _read_gcs(uri: str, client: storage.Client | None) -> bytes:
    from google.api_core import exceptions
    from google.cloud.storage.retry import DEFAULT_RETRY

    bucket, name = split_gcs_uri(uri)
    if not name or name.endswith("/"):
        raise FetchError(f"gs:// source must name an object, not a folder: {uri}")
    client = storage_client_or_default(client)
    try:
        # Reads are idempotent, so the default retry policy applies; crc32c is verified.
        return (
            client.bucket(bucket)
            .blob(name)
            .download_as_bytes(checksum="crc32c", retry=DEFAULT_RETRY)
        )
    except exceptions.NotFound:
        raise FetchError(f"source not found: {uri}") from None
    except exceptions.Forbidden as exc:
        raise FetchError(f"permission denied reading {uri}: {exc.message}") from None
    except exceptions.GoogleAPICallError as exc:
        raise FetchError(f"cannot read {uri}: {exc}") from None


def _http_session() -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=HTTP_RETRIES,
        connect=HTTP_RETRIES,
        read=HTTP_RETRIES,
        status=HTTP_RETRIES,
        backoff_factor=HTTP_BACKOFF,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,  # the last response comes back; its status is reported below
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _no_network_message(url: str, exc: Exception) -> str:
    host = urlparse(url).hostname or url
    return (
        f"cannot reach {host} to download {url}: {type(exc).__name__}. "
        "Is there a network connection? To use a copy on this machine instead, pass "
        "its path as the source (make: SOURCE=<local path>; CLI: --source <local path>)."
    )


def _read_http(url: str) -> bytes:
    """GET ``url`` streamed; connect errors and 429/5xx are retried by urllib3, a body
    cut short (connection dropped mid-body, fewer bytes than Content-Length) by
    re-requesting (same budget). A short body is never returned."""
    import requests

    attempts = HTTP_RETRIES + 1
    problem = ""
    with _http_session() as session:
        for _ in range(attempts):
            try:
                with session.get(url, stream=True, timeout=HTTP_TIMEOUT) as response:
                    if response.status_code != 200:
                        raise FetchError(
                            f"HTTP {response.status_code} {response.reason} fetching {url}"
                        )
                    data = b"".join(response.iter_content(_CHUNK))
                    problem = _short_body(response)
                    if not problem:
                        return data
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise FetchError(_no_network_message(url, exc)) from None
            except requests.exceptions.ChunkedEncodingError as exc:
                problem = _broken_reason(exc)
            except requests.RequestException as exc:
                raise FetchError(f"cannot fetch {url}: {exc}") from None
    raise FetchError(
        f"download of {url} was cut short on each of {attempts} attempts ({problem}): "
        "the connection closed before the whole body arrived"
    )


def _short_body(response: requests.Response) -> str:
    """'' if the bytes read off the wire match Content-Length (or there is none), else
    what was missing. urllib3 2 checks this itself; urllib3 1.26, which requests also
    accepts, silently returns the short body."""
    declared = response.headers.get("Content-Length", "").strip()
    received = response.raw.tell()  # bytes on the wire, before any Content-Encoding
    if declared.isdigit() and received < int(declared):
        return f"got {received} of the {declared} bytes announced by Content-Length"
    return ""


def _broken_reason(exc: Exception) -> str:
    """'Connection broken: IncompleteRead(...)' rather than the nested tuple repr."""
    inner = exc.args[0] if exc.args else exc
    args = getattr(inner, "args", ())
    return str(args[0]) if args and isinstance(args[0], str) else str(inner)
