"""The champion: the model version the deploy target serves now (its CURRENT version),
and what makes two models the same (their data and training fingerprints)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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


def find_champion(model_repository: str | None, model_name: str, target: str) -> Champion | None:
    """The CURRENT deployed version of ``model_name`` at ``target``, or None (logged why).

    Only the ``local`` target's repository is read here; the cloud targets publish
    elsewhere, so for them the gate falls back to persistence alone."""
    if target != "local":
        log.warning("no champion lookup for deploy target %r yet: persistence decides", target)
        return None
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
