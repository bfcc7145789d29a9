"""Deploy step: publish a trained SavedModel into a model repository and serve it.

Besides the step, the read-only look-ups of what each target serves now (the train
step's champion): ``served_entry`` (gke: the serving Deployment's newest version),
``served_model`` (vertex: the deployed model with the most traffic and its artifact URI)
and ``fetch_published`` (download a published gs:// version folder and its record).
"""

from components.deploy.deploy import (
    TARGETS,
    DeployError,
    DeployResult,
    check_parameters,
    rollback,
    run,
)
from components.deploy.gke import GkeError, served_entry
from components.deploy.repository import ModelRepository
from components.deploy.source import SourceError, fetch_published
from components.deploy.vertex import VertexError, default_endpoint_name, served_model

__all__ = [
    "TARGETS",
    "DeployError",
    "DeployResult",
    "GkeError",
    "ModelRepository",
    "SourceError",
    "VertexError",
    "check_parameters",
    "default_endpoint_name",
    "fetch_published",
    "rollback",
    "run",
    "served_entry",
    "served_model",
]
