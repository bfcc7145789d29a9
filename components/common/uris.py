"""Where a file lives: an http(s) URL, a ``gs://`` URI or a local path; and reading it.

Shared by the steps that accept a user-chosen input (ingest, transform, train).
Google Cloud Storage goes through google-cloud-storage with its default retry policy;
URLs through requests with retries for transient failures (connection errors, 429, 5xx,
a body cut short before its Content-Length).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
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


#: The schemes a location may have; a location without one is a local path.
SUPPORTED_SCHEMES = ("gs://", "https://", "http://", "file://")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def unsupported_scheme(uri: str, supported: tuple[str, ...] = SUPPORTED_SCHEMES) -> str:
    """The scheme of ``uri`` (``"ftp://"``) when it has one not ``supported``, else ''."""
    match = _SCHEME.match(str(uri))
    if match is None or f"{match.group(1).lower()}://" in supported:
        return ""
    return match.group(0)


def scheme_problem(name: str, uri: str, supported: tuple[str, ...] = SUPPORTED_SCHEMES) -> str:
    """'' unless ``uri`` has a scheme not ``supported`` (by default: what ``iter_chunks``
    reads): then a sentence naming ``name``, the scheme and the supported ones (not the
    URI: it may hold credentials)."""
    scheme = unsupported_scheme(uri, supported)
    if not scheme:
        return ""
    return (
        f"{name} has the unsupported scheme {scheme}; use a local path or one of "
        f"{', '.join(supported)}"
    )


def is_gcs_uri(uri: str) -> bool:
    return uri.startswith("gs://")


def is_http_url(uri: str) -> bool:
    return uri.startswith(("https://", "http://"))


def is_local(uri: str) -> bool:
    """A path on this machine (plain or ``file://``), i.e. neither a URL nor a gs:// URI
    nor a location of another scheme (``ftp://``, ``s3://``: not read, see
    ``scheme_problem``)."""
    return not (is_gcs_uri(uri) or is_http_url(uri) or unsupported_scheme(uri))


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


def local_file_problem(name: str, uri: str) -> str:
    """'' if the local file ``uri`` can be written: not a folder, in a folder that exists
    or can be created, and can be written; else a sentence naming ``name`` and the reason
    (checked without creating anything)."""
    path = local_path(uri)
    if path.is_dir():
        return f"{name} {path} is a directory; give the path of a file"
    return local_dir_problem(f"{name} {path}: its folder", str(path.parent))


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


#: Default overall deadline of one download, seconds.
DEFAULT_DEADLINE_S = 1800.0
#: Default minimum average transfer rate, bytes per second, enforced after
#: ``RATE_GRACE_S`` (a server that trickles a byte a second is given up on).
DEFAULT_MIN_BYTES_PER_S = 10_000.0
RATE_GRACE_S = 30.0
#: Bytes per read of a stream (small enough for the deadline and rate to be checked often).
STREAM_CHUNK = 1 << 16


class BodyCutShort(FetchError):
    """An http body ended before its Content-Length: worth requesting again."""


class Transfer:
    """The deadline and minimum rate of one download; ``check`` raises FetchError."""

    def __init__(
        self, uri: str, deadline_s: float = DEFAULT_DEADLINE_S,
        min_bytes_per_s: float = DEFAULT_MIN_BYTES_PER_S,
    ):  # fmt: skip
        import time

        self.uri = uri
        self.deadline_s = deadline_s
        self.min_bytes_per_s = min_bytes_per_s
        self.started = time.monotonic()
        self.received = 0

    def problem(self) -> str:
        import time

        elapsed = time.monotonic() - self.started
        if elapsed > self.deadline_s:
            return (
                f"download of {self.uri} exceeded its deadline of {self.deadline_s:g} s "
                f"({self.received} bytes received); raise the deadline for a large file"
            )
        if elapsed > RATE_GRACE_S and self.received < self.min_bytes_per_s * elapsed:
            return (
                f"download of {self.uri} is too slow: {self.received / elapsed:.0f} bytes/s "
                f"on average over {elapsed:.0f} s, below the minimum of "
                f"{self.min_bytes_per_s:g} bytes/s"
            )
        return ""

    def check(self, chunk: bytes) -> bytes:
        self.received += len(chunk)
        if problem := self.problem():
            raise FetchError(problem)
        return chunk


def iter_chunks(
    uri: str,
    *,
    storage_client: storage.Client | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    min_bytes_per_s: float = DEFAULT_MIN_BYTES_PER_S,
) -> Iterator[bytes]:
    """The content of ``uri`` as a stream of byte chunks (one request, read as it comes;
    nothing is held beyond a chunk). Raises FetchError with an actionable message; for
    an http body cut short, BodyCutShort (the caller may request it again)."""
    transfer = Transfer(uri, deadline_s, min_bytes_per_s)
    if is_http_url(uri):
        chunks = _http_chunks(uri, transfer)
    elif is_gcs_uri(uri):
        chunks = _gcs_chunks(uri, storage_client)
    elif problem := scheme_problem("source", uri):
        raise FetchError(problem)
    else:
        chunks = _local_chunks(local_path(uri))
    for chunk in chunks:
        yield transfer.check(chunk)


def read_bytes(uri: str, *, storage_client: storage.Client | None = None) -> bytes:
    """The whole content of ``uri`` (small files; ``iter_chunks`` streams). Raises
    FetchError with an actionable message; an http body cut short is requested again."""
    for attempt in range(HTTP_RETRIES + 1):
        try:
            return b"".join(iter_chunks(uri, storage_client=storage_client))
        except BodyCutShort as exc:
            problem = str(exc)
            if attempt == HTTP_RETRIES:
                raise BodyCutShort(cut_short_message(uri, problem)) from None
    raise AssertionError("unreachable")


def cut_short_message(url: str, problem: str) -> str:
    return (
        f"download of {url} was cut short on each of {HTTP_RETRIES + 1} attempts ({problem}): "
        "the connection closed before the whole body arrived"
    )


def _local_chunks(path: Path) -> Iterator[bytes]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below, also when abandoned)
    except FileNotFoundError:
        raise FetchError(f"source not found: {path}") from None
    except IsADirectoryError:
        raise FetchError(f"source is a directory, not a file: {path}") from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


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


def _gcs_chunks(uri: str, client: storage.Client | None) -> Iterator[bytes]:
    from google.api_core import exceptions
    from google.cloud.storage.retry import DEFAULT_RETRY

    bucket, name = split_gcs_uri(uri)
    if not name or name.endswith("/"):
        raise FetchError(f"gs:// source must name an object, not a folder: {uri}")
    client = storage_client_or_default(client)
    try:
        # Reads are idempotent, so the default retry policy applies. The reader fetches
        # ranges; the object's crc32c is checked over the whole stream at its end.
        import base64

        import google_crc32c

        blob = client.bucket(bucket).get_blob(name, retry=DEFAULT_RETRY)
        if blob is None:
            raise exceptions.NotFound(uri)
        crc = google_crc32c.Checksum()
        with blob.open("rb", chunk_size=_CHUNK, retry=DEFAULT_RETRY) as f:
            while chunk := f.read(_CHUNK):
                crc.update(chunk)
                yield chunk
        if blob.crc32c and base64.b64encode(crc.digest()).decode() != blob.crc32c:
            raise FetchError(f"{uri}: the bytes read do not match the object's crc32c")
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


def _http_chunks(url: str, transfer: Transfer) -> Iterator[bytes]:
    """GET ``url`` streamed; connect errors and 429/5xx are retried by urllib3. A body cut
    short raises BodyCutShort (never returned as if complete). A watchdog enforces the
    transfer's deadline and minimum rate even while a read is blocked (a server that
    trickles): it shuts the socket down, which ends the read."""
    import threading

    import requests

    with _http_session() as session:
        try:
            with session.get(url, stream=True, timeout=HTTP_TIMEOUT) as response:
                if response.status_code != 200:
                    raise FetchError(
                        f"HTTP {response.status_code} {response.reason} fetching {url}"
                    )
                stop = threading.Event()
                why: list[str] = []

                def watch() -> None:
                    while not stop.wait(0.25):
                        if problem := transfer.problem():
                            why.append(problem)
                            with contextlib.suppress(Exception):
                                response.raw.shutdown()
                            return

                watchdog = threading.Thread(target=watch, daemon=True)
                watchdog.start()
                try:
                    try:
                        for chunk in response.iter_content(STREAM_CHUNK):
                            if why:
                                break
                            yield chunk
                    except requests.RequestException:
                        if why:
                            raise FetchError(why[0]) from None
                        raise
                    if why:
                        raise FetchError(why[0])
                    if problem := _short_body(response):
                        raise BodyCutShort(problem)
                finally:
                    stop.set()
        except FetchError:
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise FetchError(_no_network_message(url, exc)) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise BodyCutShort(_broken_reason(exc)) from None
        except requests.RequestException as exc:
            raise FetchError(f"cannot fetch {url}: {exc}") from None


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
