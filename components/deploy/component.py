"""KFP wrapper of the deploy step (a Lightweight Python Component on the deploy image)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.images import image_for


@dsl.component(base_image=image_for("deploy"), install_kfp_package=False)
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
    import json

    from components.deploy.deploy import deploy

    metadata = dict(model.metadata or {})
    version = metadata.pop("version", None)
    result = deploy(
        model.path,
        target=target,
        model_repository=model_repository,
        model_name=model_name,
        metrics=metadata,
        source_run=source_run or model.uri,
        version=str(version) if version not in (None, "") else None,
    )
    with open(deployment.path, "w", encoding="utf-8") as f:
        json.dump(result.to_dict(), f, indent=2)
    deployment.metadata.update({
        "target": result.target,
        "model_name": result.model_name,
        "version": result.version,
        "previous_version": result.previous_version or "",
        "path": result.path,
    })
    print(f"deployed {result.model_name} version {result.version} to {result.path} "
          f"(previous: {result.previous_version or 'none'})")
