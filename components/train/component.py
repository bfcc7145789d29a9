"""KFP wrapper of the train step (a Lightweight Python Component on the train image)."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output


def train_op(
    features: Input[Dataset],
    stats: Input[Artifact],
    best_params: Input[Artifact],
    epochs: int,
    seed: int,
    max_mae_ratio: float,
    model_name: str,
    raw: Input[Dataset],
    model_repository: str,
    deploy_target: str,
    min_improvement: float,
    significance: float,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
    source_run: str = "",
    lineage: str = "",
    serving_namespace: str = "",
    vertex_project: str = "",
    vertex_region: str = "",
    vertex_endpoint: str = "",
    quantile_levels: str = "",
    gate_metric: str = "",
    coverage_tolerance: float = 0.0,
) -> bool:
    """Train with ``best_params``, evaluate on the test split beside persistence, export.

    ``model.path`` becomes a directory holding ``<version>/`` (a TF-Serving SavedModel);
    ``model.metadata``: version, mae_ratio, passed_gate and the test MAEs. ``report``:
    HTML with the plots. ``source_run`` (the pipeline passes
    ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``) gives the version's last digits, so runs that
    finish in the same second get distinct versions. ``raw`` (ingest's output) gives the
    data SHA-256; the champion is the version ``deploy_target`` serves now: the CURRENT
    version in ``model_repository`` (local), the serving Deployment's in
    ``serving_namespace`` (gke, read in-cluster as the pod's service account), the model
    with the traffic on ``vertex_endpoint`` in ``vertex_project``/``vertex_region``
    (vertex); ``""`` means "not given": ``run``'s default applies. ``lineage``: JSON of
    build facts (git revision, images) for the report. ``quantile_levels``,
    ``gate_metric`` and ``coverage_tolerance`` (the pipeline passes its parameters;
    ``""``/``0.0``: ``run``'s defaults) choose the forecast's levels and the gate. Returns
    whether the model passed the gate (beats the baseline the gate metric names and the
    champion, significantly, and is not identical to it); the pipeline's deploy condition
    reads it.

    A single return value on purpose: kfp.local's condition evaluator resolves a task's
    ``Output`` parameter but not a named field of a NamedTuple, so ``dsl.If`` on a named
    output never fires locally. ``mae_ratio`` is in ``metrics`` and ``model.metadata``.
    """
    import hashlib
    import json

    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.train import new_version, run

    configure_logging()
    data_sha256 = (raw.metadata or {}).get("sha256")
    if not data_sha256:
        with open(raw.path, "rb") as f:
            data_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    result = run(
        features.path,
        stats.path,
        best_params.path,
        model_path=model.path,
        report_path=report.path,
        epochs=epochs,
        seed=seed,
        max_mae_ratio=max_mae_ratio,
        model_name=model_name,
        version=new_version(source_run or None),
        model_repository=model_repository,
        deploy_target=deploy_target,
        min_improvement=min_improvement,
        significance=significance,
        data_sha256=data_sha256,
        lineage={"run": source_run or "unknown", **(json.loads(lineage) if lineage else {})},
        **{
            name: value
            for name, value in (
                ("serving_namespace", serving_namespace),
                ("vertex_project", vertex_project),
                ("vertex_region", vertex_region),
                ("vertex_endpoint", vertex_endpoint),
                ("quantile_levels", quantile_levels),
                ("gate_metric", gate_metric),
                ("coverage_tolerance", coverage_tolerance),
            )
            if value
        },
    )
    publish(result, model=model, metrics=metrics)
    return result.passed_gate
