"""The champion: the model version the deploy target serves now (the local repository's
CURRENT version, the gke Deployment's rolled-out version, the vertex endpoint's model
with the traffic), and what makes two models the same (data and training fingerprints).

The cloud look-ups are the deploy package's own read-only functions (through its face);
the served version folder is downloaded from the models bucket with its record."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from components.common.contracts import DEFAULT_SERVING_NAMESPACE
from components.common.results import ParameterError, raise_for_problems

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    version: str
    path: Path  #: the SavedModel folder
    record: dict  #: what train recorded in the model's metadata (the deploy record's metrics)

    @property
    def data_sha256(self) -> str:
        return str(self.record.get("data_sha256") or "")

    @property
    def training_fingerprint(self) -> str:
        return str(self.record.get("training_fingerprint") or "")


def training_fingerprint(hparams: Mapping[str, object], **settings: object) -> str:
    """SHA-256 of the hyper-parameters and training settings (seed, ensemble size, ...)."""
    text = json.dumps({"hparams": dict(hparams), **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_identical(champion: Champion, data_sha256: str, fingerprint: str) -> bool:
    """Same data SHA-256 and the same hyper-parameters and seed (both known)."""
    return bool(data_sha256) and (champion.data_sha256, champion.training_fingerprint) == (
        data_sha256,
        fingerprint,
    )


class ChampionError(RuntimeError):
    """What the deploy target serves could not be read (permissions, network, a served
    folder without its record): the gate cannot compare, so train stops."""


#: The keys of ``find_champion``'s ``settings``: the deploy target's settings (the
#: pipeline parameters of the same names) and where to reach it and keep the download.
SETTINGS = (
    "serving_namespace",  # gke
    "kubeconfig",  # gke: else $KUBECONFIG, else in-cluster
    "vertex_project",  # vertex
    "vertex_region",  # vertex
    "vertex_endpoint",  # vertex: endpoint display name (empty: <model_name>-endpoint)
    "vertex_api_endpoint",  # vertex: another API endpoint (tests)
    "cache_dir",  # gke, vertex: the champion's SavedModel is downloaded below it
)


def settings_problems(
    target: str | None, model_repository: str | None, settings: Mapping[str, object]
) -> dict[str, str]:
    """The problems of the settings the cloud look-ups need, by the deploy step's own
    ``check_parameters`` (a gs:// repository; a Kubernetes namespace; project and region)."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        return {"settings": f"unknown champion setting(s) {', '.join(unknown)}"}
    if target not in ("gke", "vertex"):
        return {}
    from components.deploy import check_parameters

    given = (
        {"serving_namespace": settings.get("serving_namespace") or DEFAULT_SERVING_NAMESPACE}
        if target == "gke"
        else {name: settings.get(name) or "" for name in ("vertex_project", "vertex_region")}
    )
    return check_parameters(target=target, model_repository=model_repository or "", **given)


def find_champion(
    model_repository: str | None,
    model_name: str,
    target: str,
    settings: Mapping[str, object] | None = None,
) -> Champion | None:
    """The version of ``model_name`` that ``target`` serves now, or None (logged why).

    * ``local``: the repository's CURRENT version, if it has a deployment record.
    * ``gke``: the newest entry of the serving Deployment's version history in
      ``settings["serving_namespace"]`` (what is rolled out); no Deployment: no champion.
    * ``vertex``: the deployed model with the most traffic on the endpoint (by display
      name, ``settings["vertex_endpoint"]``, else ``<model_name>-endpoint``) in
      ``vertex_project``/``vertex_region``; its registry version's artifact URI is the
      published version folder. No endpoint or nothing deployed: no champion.

    For the cloud targets the gs:// version folder and its deployment record are
    downloaded below ``settings["cache_dir"]`` (else a new temporary folder); ChampionError
    when what the target serves cannot be read."""
    settings = dict(settings or {})
    raise_for_problems(settings_problems(target, model_repository, settings))
    if target == "gke":
        return _gke_champion(model_name, settings)
    if target == "vertex":
        return _vertex_champion(model_name, settings)
    if target != "local":
        raise ParameterError(f"unknown deploy target {target!r}: cannot find its champion")
    if not model_repository:
        log.info("no model repository given: no champion, persistence decides")
        return None
    from components.deploy import ModelRepository

    repo = ModelRepository(model_repository, model_name)
    version = repo.current()
    if version is None:
        log.info("no CURRENT version of %s in %s: no champion yet", model_name, model_repository)
        return None
    if version not in repo.deployed_versions():
        log.warning(
            "CURRENT version %s of %s has no deployment record: ignored", version, repo.path
        )
        return None
    record = repo.record(version)
    return Champion(version, repo.version_path(version), dict(record.get("metrics") or {}))


def _gke_champion(model_name: str, settings: dict) -> Champion | None:
    from urllib3.exceptions import HTTPError

    from components.deploy import GkeError, served_entry

    namespace = str(settings.get("serving_namespace") or DEFAULT_SERVING_NAMESPACE)
    try:
        entry = served_entry(namespace, model_name, kubeconfig=settings.get("kubeconfig"))
    except (GkeError, HTTPError) as exc:  # HTTPError: the API server is unreachable
        raise ChampionError(f"cannot read the champion from gke: {exc}") from exc
    if entry is None:
        log.info(
            "no serving Deployment of %s in namespace %s: no champion yet", model_name, namespace
        )
        return None
    where = f"the Deployment in {namespace}"
    return _published(entry["uri"], str(entry["version"]), where, settings)


def _vertex_champion(model_name: str, settings: dict) -> Champion | None:
    from components.deploy import VertexError, default_endpoint_name, served_model

    endpoint = str(settings.get("vertex_endpoint") or default_endpoint_name(model_name))
    try:
        served = served_model(
            project=str(settings["vertex_project"]),
            region=str(settings["vertex_region"]),
            endpoint_name=endpoint,
            api_endpoint=settings.get("vertex_api_endpoint"),
        )
    except (VertexError, OSError) as exc:  # OSError: the REST transport's connection errors
        raise ChampionError(f"cannot read the champion from vertex: {exc}") from exc
    if served is None:
        log.info("no model serves on the Vertex AI endpoint %r: no champion yet", endpoint)
        return None
    where = f"endpoint {endpoint!r} ({served['model']}, {served['traffic']}% of the traffic)"
    return _published(served["artifact_uri"], served["labels"].get("model-version"), where,
                      settings)  # fmt: skip


def _published(uri: str, version: str | None, where: str, settings: dict) -> Champion:
    """Download the served gs:// version folder and its record."""
    from components.deploy import SourceError, fetch_published

    cache = settings.get("cache_dir")
    if cache:
        Path(str(cache)).mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(dir=str(cache) if cache else None, prefix="champion-"))
    try:
        path, record = fetch_published(uri, target / "model")
    except (SourceError, OSError) as exc:
        raise ChampionError(f"the version served by {where} cannot be read: {exc}") from exc
    version = str(record.get("version") or version or "")
    log.info("champion: version %s served by %s, from %s", version, where, uri)
    return Champion(version, path, dict(record.get("metrics") or {}))
