"""Deploy step: publish a trained SavedModel to a model repository, verified, with history.

``deploy`` is the step's logic (the KFP wrapper and the CLI call it); ``rollback`` points
the served version back at an earlier one. Here only the ``local`` target; the
``vertex`` target is ``vertex.py`` (command line only so far), ``gke`` does not exist yet.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from components.common.contracts import DEFAULT_MODEL_NAME
from components.common.results import ParameterError, StepResult, raise_for_problems
from components.common.uris import local_dir_problem
from components.deploy.repository import (
    ModelRepository,
    RepositoryError,
    find_versions,
    validate_model_name,
    validate_version,
)
from components.deploy.serving import ModelLoadError, ServingModel, smoke_test

log = logging.getLogger(__name__)

TARGETS: tuple[str, ...] = ("local", "vertex", "gke")


class DeployError(RuntimeError):
    """The deployment failed; nothing half-published is left behind."""


@dataclass(frozen=True)
class DeployResult(StepResult):
    """What a deploy or rollback did. ``record`` is the JSON record written."""

    target: str
    model_name: str
    version: str
    path: str
    previous_version: str | None
    record: dict

    def output_metadata(self) -> dict[str, dict]:
        return {
            "deployment": {
                "target": self.target,
                "model_name": self.model_name,
                "version": self.version,
                "previous_version": self.previous_version or "",
                "path": self.path,
            }
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _check_target(target: str) -> None:
    if target == "local":
        return
    if target == "vertex":
        raise NotImplementedError(
            "deploy target 'vertex' is not wired into the pipeline's deploy step yet (it "
            "needs the project, region and serving image digest); from the command line: "
            "python -m components.deploy publish gs://<train output> --target vertex "
            "--version V --project P --region R --image <image>@sha256:..."
        )
    if target in TARGETS:
        raise NotImplementedError(
            f"deploy target {target!r} is not implemented yet; it comes with the cloud "
            "issue. Use target='local' (a local model repository served by "
            "`python -m components.deploy serve`)."
        )
    raise ParameterError(f"unknown deploy target {target!r}; expected one of {', '.join(TARGETS)}")


def check_parameters(
    *, target: object = None, model_repository: object = None, model_name: object = None
) -> dict[str, str]:
    """``{parameter: problem}`` of ``run``'s parameters: a known target; for the local
    target, a model repository this user can create or write; a valid model name."""
    problems: dict[str, str] = {}
    if target is not None and target not in TARGETS:
        problems["target"] = (
            f"unknown deploy target {target!r}; expected one of {', '.join(TARGETS)}"
        )
    if target in (None, "local") and model_repository is not None:
        if not model_repository:
            problems["model_repository"] = "model_repository is required for the local target"
        elif problem := local_dir_problem("model_repository", str(model_repository)):
            problems["model_repository"] = problem
    if model_name is not None:
        try:
            validate_model_name(model_name)  # type: ignore[arg-type]
        except RepositoryError as exc:
            problems["model_name"] = str(exc)
    return problems


def run(
    model_path: str,
    *,
    deployment_path: str | os.PathLike | None = None,
    target: str = "local",
    model_repository: str,
    model_name: str = DEFAULT_MODEL_NAME,
    metrics: dict | None = None,
    source_run: str | None = None,
    version: str | None = None,
) -> DeployResult:
    """Publish ``<model_path>/<version>/`` as ``<model_repository>/<model_name>/<version>/``
    and, when ``deployment_path`` is given, write the result there as JSON.

    Every version folder in ``model_dir`` is published unless ``version`` picks one; the
    highest one published becomes CURRENT. Existing versions are never overwritten. Each
    published model is loaded and must give a finite prediction on a feature row before
    its record is written and CURRENT moves; if that fails, the versions this call
    published are removed, CURRENT is unchanged and DeployError is raised.
    """
    _check_target(target)
    if not model_repository:
        raise ParameterError("model_repository is required for the local target")
    # (an invalid model name is refused by ModelRepository below, as a RepositoryError)
    raise_for_problems(check_parameters(target=target, model_repository=model_repository))
    model_dir = model_path
    repo = ModelRepository(model_repository, model_name)
    versions = find_versions(model_dir)
    if version is not None:
        version = validate_version(version)
        if version not in versions:
            raise RepositoryError(
                f"version {version} not found in {model_dir} (found: {', '.join(versions)})"
            )
        versions = [version]
    try:
        metrics_json = json.loads(json.dumps(metrics or {}))
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"metrics must be JSON-serialisable: {exc}") from exc

    with repo.locked():
        existing = [v for v in versions if repo.version_path(v).exists()]
        if existing:
            orphans = [v for v in existing if v not in repo.deployed_versions()]
            hint = (
                f" (version(s) {', '.join(orphans)} have no deployment record: left by an "
                "interrupted deploy, never served; delete the folder to retry)"
                if orphans
                else ""
            )
            raise RepositoryError(
                f"model {model_name!r} already has version(s) {', '.join(existing)} in "
                f"{repo.path}; versions are never overwritten: export under a new version{hint}"
            )
        published: list[str] = []
        smoke: dict[str, list[float]] = {}
        try:
            for v in versions:
                published.append(v)
                path = repo.publish_copy(Path(model_dir) / v, v)
                smoke[v] = smoke_test(ServingModel(path, v))
        except (ModelLoadError, OSError) as exc:
            for v in published:
                if repo.version_path(v).exists():
                    repo.remove_version(v)
            raise DeployError(
                f"deploy of {model_name!r} version {published[-1]} failed and was undone "
                f"(version folder removed, CURRENT still {repo.current()}): {exc}"
            ) from exc

        previous = repo.current()
        records = []
        for v in published:
            record = {
                "action": "deploy",
                "target": target,
                "model_name": model_name,
                "version": v,
                "path": os.path.relpath(repo.version_path(v), repo.root),
                "metrics": metrics_json,
                "source_run": source_run,
                "source_model_dir": str(model_dir),
                "deployed_at": _now(),
                "previous_version": previous,
                "smoke_predictions": smoke[v],
            }
            repo.write_record(v, record)
            records.append(record)
        newest = published[-1]
        repo.set_current(newest)
        for record in records:
            repo.append_history(record)
    result = DeployResult(
        target, model_name, newest, str(repo.version_path(newest)), previous, records[-1]
    )
    if deployment_path is not None:
        Path(deployment_path).parent.mkdir(parents=True, exist_ok=True)
        Path(deployment_path).write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    log.info(
        "deployed %s version %s to %s (previous: %s)",
        model_name,
        newest,
        result.path,
        previous or "none",
    )
    return result


def rollback(model_repository: str, model_name: str, to_version: str | None = None) -> DeployResult:
    """Make an earlier deployed version CURRENT and record it.

    ``to_version`` defaults to the highest deployed version below CURRENT. The target is
    loaded and smoke-tested again before CURRENT moves.
    """
    repo = ModelRepository(model_repository, model_name)
    if not repo.path.is_dir():
        raise RepositoryError(f"model {model_name!r} not found in repository {model_repository}")
    with repo.locked():
        current = repo.current()
        deployed = repo.deployed_versions()
        if current is None:
            raise RepositoryError(f"model {model_name!r} has no CURRENT version to roll back from")
        if to_version is None:
            earlier = [v for v in deployed if int(v) < int(current)]
            if not earlier:
                raise RepositoryError(
                    f"no deployed version of {model_name!r} older than CURRENT {current} "
                    f"(deployed: {', '.join(deployed)})"
                )
            to_version = earlier[-1]
        to_version = validate_version(to_version)
        if to_version == current:
            raise RepositoryError(f"version {to_version} of {model_name!r} is already CURRENT")
        if to_version not in deployed:
            raise RepositoryError(
                f"version {to_version} of {model_name!r} was never deployed "
                f"(deployed: {', '.join(deployed) or 'none'})"
            )
        path = repo.version_path(to_version)
        try:
            smoke = smoke_test(ServingModel(path, to_version))
        except ModelLoadError as exc:
            raise DeployError(
                f"rollback to version {to_version} aborted, CURRENT still {current}: {exc}"
            ) from exc
        record = {
            "action": "rollback",
            "target": "local",
            "model_name": model_name,
            "version": to_version,
            "path": os.path.relpath(path, repo.root),
            "deployed_at": _now(),
            "previous_version": current,
            "smoke_predictions": smoke,
        }
        repo.set_current(to_version)
        repo.append_history(record)
    return DeployResult("local", model_name, to_version, str(path), current, record)
