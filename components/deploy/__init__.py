"""Deploy step: publish a trained SavedModel into a model repository and serve it."""

from components.deploy.deploy import (
    TARGETS,
    DeployError,
    DeployResult,
    check_parameters,
    rollback,
    run,
)
from components.deploy.repository import ModelRepository

__all__ = [
    "TARGETS",
    "DeployError",
    "DeployResult",
    "ModelRepository",
    "check_parameters",
    "rollback",
    "run",
]
