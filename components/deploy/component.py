"""KFP wrapper of the deploy step (a Lightweight Python Component on the deploy image)."""

from kfp.dsl import Artifact, Input, Model, Output


def deploy_op(
    model: Input[Model],
    target: str,
    model_repository: str,
    model_name: str,
    deployment: Output[Artifact],
    source_run: str = "",
    image: str = "",
    vertex_project: str = "",
    vertex_region: str = "",
    vertex_endpoint: str = "",
    serving_machine_type: str = "",
    serving_min_replicas: int = 0,
    serving_max_replicas: int = 0,
    serving_service_account: str = "",
    serving_namespace: str = "",
    serving_k8s_service_account: str = "",
):
    """Publish ``model`` (TF-Serving layout) to ``model_repository`` and make it CURRENT.

    ``model.metadata`` gives the version to publish and the metrics to record; pass
    ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` as ``source_run`` to record the run. The
    deployment record is written to ``deployment`` as JSON. ``image`` (this step's own
    image, by digest in a cloud build) is the server the vertex and gke targets run; the
    other settings are theirs (see ``components.deploy.run``); ``""`` and ``0`` mean "not
    given": ``run``'s default applies.
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
        **{
            name: value
            for name, value in (
                ("image", image),
                ("vertex_project", vertex_project),
                ("vertex_region", vertex_region),
                ("vertex_endpoint", vertex_endpoint),
                ("serving_machine_type", serving_machine_type),
                ("serving_min_replicas", serving_min_replicas),
                ("serving_max_replicas", serving_max_replicas),
                ("serving_service_account", serving_service_account),
                ("serving_namespace", serving_namespace),
                ("serving_k8s_service_account", serving_k8s_service_account),
            )
            if value not in ("", 0)
        },
    )
    publish(result, deployment=deployment)
