"""Where the model server finds the model it serves.

``open_source(uri, model_name)`` gives one of:

* ``RepositorySource``: the CURRENT version of ``model_name`` in a model repository
  (``repository.py``'s layout) on a local path or ``gs://bucket/prefix``. The server polls
  ``current()`` and loads a new CURRENT without a restart.
* ``SavedModelSource``: one fixed SavedModel folder (``<uri>/saved_model.pb``), local or
  ``gs://``: what Vertex AI hands a custom container in ``AIP_STORAGE_URI`` (a Model
  Registry version is immutable; traffic splits do the rollbacks there).

A ``gs://`` version is downloaded once into a local cache folder (TensorFlow then loads a
local SavedModel; no GCS file-system plugin needed) with google-cloud-storage, which
honours ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.uris import (
    FetchError,
    is_gcs_uri,
    local_path,
    split_gcs_uri,
    storage_client_or_default,
)
from components.deploy.repository import (
    CURRENT_FILE,
    RECORD_FILE,
    SAVED_MODEL_FILE,
    VERSION_PATTERN,
    ModelRepository,
    RepositoryError,
    validate_model_name,
    validate_version,
)

if TYPE_CHECKING:
    from google.cloud import storage

FIXED_VERSION = "1"


class SourceError(RuntimeError):
    """The model source cannot be read (missing, unreadable, not a SavedModel)."""


class _Gcs:
    """The objects under ``gs://bucket/prefix`` through one storage client."""

    def __init__(self, uri: str, client: storage.Client | None = None):
        self.bucket_name, prefix = split_gcs_uri(uri)
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def bucket(self) -> storage.Bucket:
        if self._client is None:
            try:
                self._client = storage_client_or_default(None)
            except FetchError as exc:
                raise SourceError(str(exc)) from None
        return self._client.bucket(self.bucket_name)

    def name(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        return f"gs://{self.bucket_name}/{self.name(*parts)}"

    def read_text(self, *parts: str) -> str | None:
        """The object's text, or None if it does not exist."""
        from google.api_core import exceptions

        try:
            return self.bucket.blob(self.name(*parts)).download_as_bytes().decode("utf-8")
        except exceptions.NotFound:
            return None
        except (exceptions.GoogleAPICallError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read {self.uri(*parts)}: {exc}") from None

    def names_under(self, *parts: str) -> list[str]:
        """Object names below the folder ``parts`` (relative to it)."""
        from google.api_core import exceptions

        folder = self.name(*parts) + "/"
        try:
            return [b.name[len(folder) :] for b in self.bucket.list_blobs(prefix=folder)]
        except exceptions.GoogleAPICallError as exc:
            raise SourceError(f"cannot list {self.uri(*parts)}/: {exc}") from None

    def download_folder(self, target: Path, *parts: str) -> Path:
        """Copy the folder ``parts`` to ``target`` (via a temp sibling and one rename)."""
        from google.api_core import exceptions

        names = [n for n in self.names_under(*parts) if n and not n.endswith("/")]
        if SAVED_MODEL_FILE not in names:
            raise SourceError(f"no {SAVED_MODEL_FILE} under {self.uri(*parts)}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        try:
            for name in names:
                local = tmp / name
                local.parent.mkdir(parents=True, exist_ok=True)
                self.bucket.blob(self.name(*parts, name)).download_to_filename(str(local))
            os.rename(tmp, target)
        except exceptions.GoogleAPICallError as exc:
            raise SourceError(f"cannot download {self.uri(*parts)}/: {exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


class RepositorySource:
    """The CURRENT version of one model in a local or ``gs://`` model repository."""

    fixed = False

    def __init__(
        self,
        uri: str,
        model_name: str,
        *,
        storage_client: storage.Client | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.uri = uri
        self.model_name = validate_model_name(model_name)
        if is_gcs_uri(uri):
            self._gcs: _Gcs | None = _Gcs(uri, storage_client)
            self._local = None
            self._cache = Path(cache_dir or tempfile.mkdtemp(prefix="model-cache-"))
            self.description = self._gcs.uri(self.model_name)
        else:
            self._gcs = None
            self._local = ModelRepository(local_path(uri), model_name)
            self.description = str(self._local.path)

    def current(self) -> str | None:
        """The version CURRENT names (None when there is none); SourceError if unreadable."""
        if self._local is not None:
            try:
                text = self._local.current()
            except OSError as exc:
                raise SourceError(f"cannot read {self._local.path / CURRENT_FILE}: {exc}") from None
        else:
            text = self._gcs.read_text(self.model_name, CURRENT_FILE)
            text = text.strip() if text else None
        if text is None:
            return None
        try:
            return validate_version(text)
        except RepositoryError as exc:
            raise SourceError(f"{self.description}/{CURRENT_FILE}: {exc}") from None

    def versions(self) -> list[str]:
        """The deployed versions (with a deployment record), in numeric order."""
        if self._local is not None:
            return self._local.deployed_versions()
        found = {
            name.split("/", 1)[0]
            for name in self._gcs.names_under(self.model_name)
            if name.count("/") == 1 and name.endswith("/" + RECORD_FILE)
        }
        return sorted((v for v in found if VERSION_PATTERN.match(v)), key=int)

    def fetch(self, version: str) -> Path:
        """A local folder holding ``version``'s SavedModel."""
        version = validate_version(version)
        if self._local is not None:
            path = self._local.version_path(version)
            if not (path / SAVED_MODEL_FILE).is_file():
                raise SourceError(f"no {SAVED_MODEL_FILE} in {path}")
            if not (path / RECORD_FILE).is_file():
                raise SourceError(f"version {version} in {path} was never deployed (no record)")
            return path
        target = self._cache / version
        if not target.is_dir():
            self._gcs.download_folder(target, self.model_name, version)
        return target


class SavedModelSource:
    """One fixed SavedModel folder (local or ``gs://``): Vertex AI's ``AIP_STORAGE_URI``."""

    fixed = True

    def __init__(
        self,
        uri: str,
        *,
        storage_client: storage.Client | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.uri = uri
        self.description = uri
        self._gcs = _Gcs(uri, storage_client) if is_gcs_uri(uri) else None
        self._cache = Path(cache_dir or tempfile.mkdtemp(prefix="model-cache-"))
        self._version: str | None = None

    def current(self) -> str:
        """The version its deployment record names, else ``FIXED_VERSION``."""
        if self._version is None:
            if self._gcs is not None:
                text = self._gcs.read_text(RECORD_FILE)
            else:
                record = local_path(self.uri) / RECORD_FILE
                text = record.read_text(encoding="utf-8") if record.is_file() else None
            version = FIXED_VERSION
            if text:
                try:
                    version = validate_version(str(json.loads(text).get("version")))
                except (ValueError, AttributeError, RepositoryError):
                    version = FIXED_VERSION
            self._version = version
        return self._version

    def versions(self) -> list[str]:
        return [self.current()]

    def fetch(self, version: str) -> Path:
        if self._gcs is None:
            return local_path(self.uri)
        target = self._cache / "model"
        if not target.is_dir():
            self._gcs.download_folder(target)
        return target


def open_source(
    uri: str,
    model_name: str,
    *,
    storage_client: storage.Client | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> RepositorySource | SavedModelSource:
    """A fixed SavedModel if ``uri`` holds ``saved_model.pb``, else a model repository."""
    if is_gcs_uri(uri):
        gcs = _Gcs(uri, storage_client)
        try:
            holds_model = gcs.bucket.blob(gcs.name(SAVED_MODEL_FILE)).exists()
        except Exception as exc:  # the client raises transport errors of several types
            raise SourceError(f"cannot read {uri}: {exc}") from None
    else:
        holds_model = (local_path(uri) / SAVED_MODEL_FILE).is_file()
    if holds_model:
        return SavedModelSource(uri, storage_client=storage_client, cache_dir=cache_dir)
    return RepositorySource(uri, model_name, storage_client=storage_client, cache_dir=cache_dir)


def fetch_published(
    uri: str, target: str | os.PathLike, *, storage_client: storage.Client | None = None
) -> tuple[Path, dict]:
    """Download the published version folder ``uri`` (``gs://.../<model>/<version>``) to
    the new folder ``target``; the local SavedModel folder and its deployment record.
    SourceError when the folder holds no record, an unpublished one, or no SavedModel."""
    if not is_gcs_uri(uri):
        raise SourceError(f"a published version folder is gs://..., got {uri!r}")
    gcs = _Gcs(uri.rstrip("/"), storage_client)
    text = gcs.read_text(RECORD_FILE)
    if text is None:
        raise SourceError(f"no {RECORD_FILE} in {gcs.uri()}: not a published version")
    try:
        record = json.loads(text)
    except ValueError:
        raise SourceError(f"{gcs.uri(RECORD_FILE)} is not JSON") from None
    if not isinstance(record, dict) or record.get("state") != "published":
        state = record.get("state") if isinstance(record, dict) else None
        raise SourceError(f"{gcs.uri()} is not a published version (state {state!r})")
    return gcs.download_folder(Path(target)), record
