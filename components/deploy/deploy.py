"""Deploy step: publish a trained SavedModel to a model repository, verified, with history.

``deploy`` is the step's logic (the KFP wrapper and the CLI call it); ``rollback`` points
the served version back at an earlier one of the ``local`` target.

The cloud targets ``vertex`` (``vertex.py``) and ``gke`` (``gke.py``) first publish the
model as a new version folder of the models bucket (``publish.py``), then deploy that
folder: a Vertex AI Model Registry version on an endpoint, or a rolling update of the
serving Deployment in the cluster. Their rollbacks are ``rollback_vertex`` and
``rollback_gke`` (``python -m components.deploy rollback --target vertex|gke``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from components.common.contracts import DEFAULT_MODEL_NAME
from components.common.results import ParameterError, StepResult, raise_for_problems
from components.common.uris import local_dir_problem
from components.deploy.gke import DNS_LABEL, GkeTarget
from components.deploy.repository import (
    ModelRepository,
    RepositoryError,
    find_versions,
    select_versions,
    validate_model_name,
    validate_version,
)
from components.deploy.serving import ModelLoadError, ServingModel, smoke_test
from components.deploy.vertex import VertexTarget
from components.images import is_pinned

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
                # the served model's levels ("" for a point model), as train's metadata
                "quantile_levels": ",".join(map(repr, self.record.get("quantile_levels") or ())),
            }
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _finite(value: object) -> object:
    """``value`` with every non-finite float replaced by None (a record is strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def metrics_json(metrics: dict | None) -> dict:
    """The metrics to record (train's model metadata: the gate's figures, the quantile
    levels, pinball ratio and 90% coverage, ...) as strict JSON: a NaN (a score the run
    did not compute) becomes null."""
    try:
        return _finite(json.loads(json.dumps(metrics or {})))
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"metrics must be JSON-serialisable: {exc}") from exc


def _levels(model: ServingModel) -> list[float] | None:
    return None if model.levels is None else list(model.levels)


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ParameterError(
            f"unknown deploy target {target!r}; expected one of {', '.join(TARGETS)}"
        )


def _cloud_problems(
    target: object,
    *,
    model_repository: object,
    image: object,
    vertex_project: object,
    vertex_region: object,
    serving_machine_type: object,
    serving_service_account: object,
    serving_namespace: object,
    serving_k8s_service_account: object,
) -> dict[str, str]:
    """The problems of the settings the vertex or gke target needs (None: not given, so
    not checked; an empty string is a missing value)."""
    problems: dict[str, str] = {}
    if model_repository is not None and not str(model_repository).startswith("gs://"):
        problems["model_repository"] = (
            f"the {target} target publishes to the models bucket: model_repository must be "
            f"gs://..., got {model_repository!r}"
        )
    if image is not None and not is_pinned(str(image)):
        problems["image"] = (
            f"the {target} target needs the serving image pinned by digest "
            f"(<image>@sha256:<64 hex>, the deploy image of build/images.json), got {image!r}"
        )
    if target == "vertex":
        for name, value in (
            ("vertex_project", vertex_project),
            ("vertex_region", vertex_region),
            ("serving_machine_type", serving_machine_type),
            ("serving_service_account", serving_service_account),
        ):
            if value is not None and not str(value).strip():
                problems[name] = f"{name} is required for deploy target 'vertex'"
        if serving_service_account and "@" not in str(serving_service_account):
            problems["serving_service_account"] = (
                f"serving_service_account must be a service account e-mail, got "
                f"{serving_service_account!r}"
            )
    if target == "gke":
        for name, value in (
            ("serving_namespace", serving_namespace),
            ("serving_k8s_service_account", serving_k8s_service_account),
        ):
            if value is not None and not DNS_LABEL.match(str(value)):
                problems[name] = (
                    f"{name} must be a Kubernetes name (lower-case letters, digits, '-'), "
                    f"got {value!r}"
                )
    return problems


def _replicas_problems(**replicas: object) -> dict[str, str]:
    """The problems of the given serving replica counts (checked whatever the target, so
    a run that gives them learns of a mistake before any step): each an integer >= 1, the
    most at least the fewest."""
    problems: dict[str, str] = {}
    counts = {}
    for name, value in replicas.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems[name] = f"{name} must be an integer >= 1, got {value!r}"
        else:
            counts[name] = value
    if len(counts) == 2 and counts["serving_min_replicas"] > counts["serving_max_replicas"]:
        problems["serving_max_replicas"] = (
            f"serving_max_replicas ({counts['serving_max_replicas']}) must be at least "
            f"serving_min_replicas ({counts['serving_min_replicas']})"
        )
    return problems


def check_parameters(
    *,
    target: object = None,
    model_repository: object = None,
    model_name: object = None,
    image: object = None,
    vertex_project: object = None,
    vertex_region: object = None,
    vertex_endpoint: object = None,
    serving_machine_type: object = None,
    serving_min_replicas: object = None,
    serving_max_replicas: object = None,
    serving_service_account: object = None,
    serving_namespace: object = None,
    serving_k8s_service_account: object = None,
) -> dict[str, str]:
    """``{parameter: problem}`` of ``run``'s parameters: a known target; for the local
    target, a model repository this user can create or write; for vertex and gke, a
    gs:// model repository, the image by digest and each setting of that target (the
    other target's settings are not checked); given replica counts, whatever the target;
    a valid model name."""
    problems: dict[str, str] = {}
    if target in ("vertex", "gke"):
        problems.update(
            _cloud_problems(
                target,
                model_repository=model_repository,
                image=image,
                vertex_project=vertex_project,
                vertex_region=vertex_region,
                serving_machine_type=serving_machine_type,
                serving_service_account=serving_service_account,
                serving_namespace=serving_namespace,
                serving_k8s_service_account=serving_k8s_service_account,
            )
        )
    problems.update(
        _replicas_problems(
            serving_min_replicas=serving_min_replicas, serving_max_replicas=serving_max_replicas
        )
    )
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
    image: str | None = None,
    vertex_project: str | None = None,
    vertex_region: str | None = None,
    vertex_endpoint: str | None = None,
    serving_machine_type: str = VertexTarget.machine_type,
    serving_min_replicas: int = VertexTarget.min_replicas,
    serving_max_replicas: int = VertexTarget.max_replicas,
    serving_service_account: str | None = None,
    serving_namespace: str = GkeTarget.namespace,
    serving_k8s_service_account: str = GkeTarget.service_account,
    rollout_timeout_s: float = GkeTarget.rollout_timeout_s,
    kubeconfig: str | None = None,
    vertex_api_endpoint: str | None = None,
) -> DeployResult:
    """Publish ``<model_path>/<version>/`` as ``<model_repository>/<model_name>/<version>/``
    and, when ``deployment_path`` is given, write the result there as JSON.

    Every version folder in ``model_dir`` is published unless ``version`` picks one; the
    highest one published becomes CURRENT. Existing versions are never overwritten. Each
    published model is loaded and must give a finite prediction on a feature row before
    its record is written and CURRENT moves; if that fails, the versions this call
    published are removed, CURRENT is unchanged and DeployError is raised.

    ``target="vertex"`` or ``"gke"``: the model (``version``, else train's highest) is
    smoke-tested here, published as the next version folder of the gs://
    ``model_repository`` and deployed from there with the serving ``image`` (by digest):
    on Vertex AI in ``vertex_project``/``vertex_region`` on the endpoint
    ``vertex_endpoint`` (default ``<model_name>-endpoint``), running as
    ``serving_service_account`` on ``serving_machine_type``; on GKE in
    ``serving_namespace`` as the KSA ``serving_k8s_service_account``, waiting up to
    ``rollout_timeout_s`` for the rollout (``kubeconfig``: else ``$KUBECONFIG``, else
    in-cluster). Both scale between ``serving_min_replicas`` and ``serving_max_replicas``.
    ``vertex_api_endpoint`` points the Vertex AI clients elsewhere (tests).
    """
    _check_target(target)
    if target != "local":
        cloud = {
            "image": image or "",
            "vertex_project": vertex_project or "",
            "vertex_region": vertex_region or "",
            "serving_machine_type": serving_machine_type,
            "serving_min_replicas": serving_min_replicas,
            "serving_max_replicas": serving_max_replicas,
            "serving_service_account": serving_service_account or "",
            "serving_namespace": serving_namespace,
            "serving_k8s_service_account": serving_k8s_service_account,
        }
        raise_for_problems(
            check_parameters(
                target=target,
                model_repository=model_repository or "",
                model_name=model_name,
                **cloud,
            )
        )
        return _run_cloud(
            model_path,
            deployment_path=deployment_path,
            target=target,
            model_repository=model_repository,
            model_name=model_name,
            metrics=metrics,
            source_run=source_run,
            version=version,
            vertex_endpoint=vertex_endpoint,
            rollout_timeout_s=rollout_timeout_s,
            kubeconfig=kubeconfig,
            vertex_api_endpoint=vertex_api_endpoint,
            **cloud,
        )
    if not model_repository:
        raise ParameterError("model_repository is required for the local target")
    # (an invalid model name is refused by ModelRepository below, as a RepositoryError)
    raise_for_problems(check_parameters(target=target, model_repository=model_repository))
    model_dir = model_path
    repo = ModelRepository(model_repository, model_name)
    versions = select_versions(model_dir, version)
    recorded_metrics = metrics_json(metrics)

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
        levels: dict[str, list[float] | None] = {}
        try:
            for v in versions:
                published.append(v)
                path = repo.publish_copy(Path(model_dir) / v, v)
                served = ServingModel(path, v)
                smoke[v] = smoke_test(served)
                levels[v] = _levels(served)
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
                "metrics": recorded_metrics,
                "source_run": source_run,
                "source_model_dir": str(model_dir),
                "deployed_at": _now(),
                "previous_version": previous,
                "quantile_levels": levels[v],
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
    _write_result(result, deployment_path)
    log.info(
        "deployed %s version %s to %s (previous: %s)",
        model_name,
        newest,
        result.path,
        previous or "none",
    )
    return result


def _write_result(result: DeployResult, deployment_path) -> None:
    if deployment_path is not None:
        Path(deployment_path).parent.mkdir(parents=True, exist_ok=True)
        Path(deployment_path).write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")


def _run_cloud(model_path: str, *, deployment_path, target: str, **settings) -> DeployResult:
    """Smoke-test, publish to the models bucket, deploy on Vertex AI or GKE."""
    from components.deploy.gke import GkeError, api_client, deploy_gke
    from components.deploy.publish import PublishError, publish_version
    from components.deploy.vertex import VertexError, default_endpoint_name, deploy_vertex

    model_name = settings["model_name"]
    versions = find_versions(model_path)
    version = validate_version(settings["version"]) if settings["version"] else versions[-1]
    if version not in versions:
        raise RepositoryError(
            f"version {version} not found in {model_path} (found: {', '.join(versions)})"
        )
    try:
        served = ServingModel(Path(model_path) / version, version)
        smoke = smoke_test(served)
    except ModelLoadError as exc:
        raise DeployError(
            f"the model to deploy fails its smoke test; nothing published: {exc}"
        ) from exc
    metrics = metrics_json(settings["metrics"])
    try:
        published = publish_version(
            model_path,
            settings["model_repository"],
            model_name,
            version=version,
            metrics=metrics,
            source_run=settings["source_run"],
            target=target,
            quantile_levels=_levels(served),
        )
    except PublishError as exc:
        raise DeployError(str(exc)) from exc
    record = {**published.record, "smoke_predictions": smoke}
    try:
        if target == "vertex":
            vertex = VertexTarget(
                project=settings["vertex_project"],
                region=settings["vertex_region"],
                image=settings["image"],
                endpoint_name=settings["vertex_endpoint"] or default_endpoint_name(model_name),
                model_display_name=model_name,
                machine_type=settings["serving_machine_type"],
                min_replicas=settings["serving_min_replicas"],
                max_replicas=settings["serving_max_replicas"],
                service_account=settings["serving_service_account"],
            )
            outcome = deploy_vertex(
                vertex,
                artifact_uri=published.uri,
                model_name=model_name,
                version=published.version,
                api_endpoint=settings["vertex_api_endpoint"],
            ).to_json()
            previous = None  # Vertex AI keeps it as a deployed model id (in the record)
        else:
            gke = GkeTarget(
                image=settings["image"],
                namespace=settings["serving_namespace"],
                service_account=settings["serving_k8s_service_account"],
                min_replicas=settings["serving_min_replicas"],
                max_replicas=settings["serving_max_replicas"],
                rollout_timeout_s=settings["rollout_timeout_s"],
            )
            outcome = deploy_gke(
                gke,
                model_name=model_name,
                version=published.version,
                uri=published.uri,
                api=api_client(settings["kubeconfig"]),
            )
            previous = outcome["previous_version"]
    except (VertexError, GkeError) as exc:
        raise DeployError(
            f"version {published.version} is published at {published.uri} but its {target} "
            f"deployment failed: {exc}"
        ) from exc
    record[target] = outcome
    result = DeployResult(target, model_name, published.version, published.uri, previous, record)
    _write_result(result, deployment_path)
    log.info("deployed %s version %s on %s from %s", model_name, published.version, target,
             published.uri)  # fmt: skip
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
            served = ServingModel(path, to_version)
            smoke = smoke_test(served)
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
            "quantile_levels": _levels(served),
            "smoke_predictions": smoke,
        }
        repo.set_current(to_version)
        repo.append_history(record)
    return DeployResult("local", model_name, to_version, str(path), current, record)
