"""The local model repository: TF-Serving layout plus a deployment history.

Layout under the repository root::

    <root>/<model_name>/<version>/saved_model.pb, variables/, ...   (TF-Serving layout)
    <root>/<model_name>/<version>/deployment.json   the record of that version's deploy
    <root>/<model_name>/deployments.jsonl           every deploy and rollback, append-only
    <root>/<model_name>/CURRENT                     the version being served (one line)

Versions are positive integers, as TF-Serving requires of its version folders. A
version folder without ``deployment.json`` was never deployed (a publish in progress or
one that crashed); it is not a rollback candidate and our server never serves it.
Stock TF-Serving would serve the highest version folder regardless of ``CURRENT``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from components.common.results import model_name_problem

VERSION_PATTERN = re.compile(r"^[0-9]+$")
SAVED_MODEL_FILE = "saved_model.pb"
RECORD_FILE = "deployment.json"
HISTORY_FILE = "deployments.jsonl"
CURRENT_FILE = "CURRENT"
_LOCK_FILE = ".lock"
_TEMP_PREFIX = ".incoming-"


class RepositoryError(ValueError):
    """A model directory or repository is not in the expected shape."""


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a safe single path segment, else raise RepositoryError."""
    if problem := model_name_problem(name):
        raise RepositoryError(problem)
    return name


def validate_version(version: str) -> str:
    version = str(version).strip()
    if not VERSION_PATTERN.match(version) or int(version) <= 0:
        raise RepositoryError(
            f"invalid model version {version!r}: TF-Serving versions are positive integers"
        )
    return version


def find_versions(model_dir: str | os.PathLike) -> list[str]:
    """The SavedModel version folders of a train output ``<model_dir>/<version>/``.

    Raises RepositoryError naming the problem when the directory is missing, is itself
    a version folder, or holds no ``<version>/saved_model.pb``.
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise RepositoryError(f"model directory not found: {path}")
    if (path / SAVED_MODEL_FILE).is_file():
        raise RepositoryError(
            f"{path} is a single SavedModel, not a model directory: expected "
            f"<model_dir>/<version>/{SAVED_MODEL_FILE}; pass its parent inside a "
            "numbered folder, e.g. <model_dir>/1/"
        )
    versions, broken = [], []
    for child in sorted(path.iterdir()):
        if not child.is_dir() or not VERSION_PATTERN.match(child.name):
            continue
        if (child / SAVED_MODEL_FILE).is_file():
            versions.append(child.name)
        else:
            broken.append(child.name)
    if broken:
        raise RepositoryError(
            f"version folder(s) {', '.join(broken)} in {path} have no {SAVED_MODEL_FILE}"
        )
    if not versions:
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise RepositoryError(
            f"no SavedModel found in {path}: expected <version>/{SAVED_MODEL_FILE} with a "
            f"numeric version folder; found {found}"
        )
    return sorted(versions, key=int)


def select_versions(model_dir: str | os.PathLike, version: str | None) -> list[str]:
    """The version folders of a train output to act on: ``[version]`` (validated, and
    present in ``model_dir``), else all of them, ascending."""
    versions = find_versions(model_dir)
    if version is None:
        return versions
    version = validate_version(version)
    if version not in versions:
        raise RepositoryError(
            f"version {version} not found in {model_dir} (found: {', '.join(versions)})"
        )
    return [version]


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, fsync it, then rename over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ModelRepository:
    """One model's folder in a local repository."""

    def __init__(self, root: str | os.PathLike, model_name: str):
        self.root = Path(root)
        self.model_name = validate_model_name(model_name)
        self.path = self.root / self.model_name

    def version_path(self, version: str) -> Path:
        return self.path / validate_version(version)

    def published_versions(self) -> list[str]:
        """Every numeric version folder, deployed or not, in numeric order."""
        if not self.path.is_dir():
            return []
        names = [
            p.name for p in self.path.iterdir() if p.is_dir() and VERSION_PATTERN.match(p.name)
        ]
        return sorted(names, key=int)

    def deployed_versions(self) -> list[str]:
        """Versions that passed their smoke test (they have a deployment record)."""
        return [v for v in self.published_versions() if (self.path / v / RECORD_FILE).is_file()]

    def current(self) -> str | None:
        try:
            text = (self.path / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def set_current(self, version: str) -> None:
        _write_atomic(self.path / CURRENT_FILE, validate_version(version) + "\n")

    def record(self, version: str) -> dict:
        return json.loads((self.version_path(version) / RECORD_FILE).read_text(encoding="utf-8"))

    def write_record(self, version: str, record: dict) -> Path:
        path = self.version_path(version) / RECORD_FILE
        _write_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        return path

    def append_history(self, record: dict) -> None:
        with open(self.path / HISTORY_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def history(self) -> list[dict]:
        try:
            lines = (self.path / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on this model's folder (one deployer at a time)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / _LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def publish_copy(self, source: Path, version: str) -> Path:
        """Copy a SavedModel folder to ``<version>/`` via a temp sibling and one rename.

        Never replaces an existing version. Call while holding ``locked()``.
        """
        target = self.version_path(version)
        if target.exists():
            raise RepositoryError(
                f"version {version} of model {self.model_name!r} already exists at {target}; "
                "versions are never overwritten: export the model under a new version"
            )
        tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=f"{_TEMP_PREFIX}{version}-"))
        try:
            staged = tmp / version
            shutil.copytree(source, staged)
            os.rename(staged, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def remove_version(self, version: str) -> None:
        """Delete a version folder (used to undo a publish that failed its smoke test)."""
        target = self.version_path(version)
        if self.current() == version:
            raise RepositoryError(f"refusing to remove version {version}: it is CURRENT")
        # Rename first so a half-deleted folder is never visible under a version number.
        doomed = Path(tempfile.mkdtemp(dir=self.path, prefix=f"{_TEMP_PREFIX}removed-{version}-"))
        os.rename(target, doomed / version)
        shutil.rmtree(doomed)
