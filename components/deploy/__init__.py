"""Deploy step: publish a trained SavedModel into a model repository and serve it."""

from components.deploy.deploy import DeployError, DeployResult, deploy, rollback

__all__ = ["DeployError", "DeployResult", "deploy", "rollback"]
