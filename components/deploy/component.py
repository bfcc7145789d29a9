"""KFP wrapper of the deploy step (a Lightweight Python Component on the deploy image)."""

from kfp.dsl import Artifact, Input, Model, Output


def deploy_op(
    model: Input[Model],
    target: str,
    model_repository: str,
    model_name: str,
    deployment: Output[Artifact],
    source_run: str = "",
):
    """Publish ``model`` (TF-Serving layout) to ``model_repository`` and make it CURRENT.

    ``model.metadata`` gives the version to publish and the metrics to record; pass
    ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` as ``source_run`` to record the run. The
    deployment record is written to ``deployment`` as JSON.
    """
    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.deploy import run

    configure_logging()
    metadata = dict(model.metadata or {})
    version = metadata.pop("version", None)
    result = run(
        model.path,
        deployment_path=deployment.path,
        target=target,
        model_repository=model_repository,
        model_name=model_name,
        metrics=metadata,
        source_run=source_run or model.uri,
        version=str(version) if version not in (None, "") else None,
    )
    publish(result, deployment=deployment)
