"""KFP wrapper of the tune step (a Lightweight Python Component on the tune image)."""

from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output


def tune_op(
    features: Input[Dataset],
    stats: Input[Artifact],
    n_trials: int,
    timeout_s: int,
    max_epochs: int,
    seed: int,
    backend: str,
    parallel_trials: int,
    vertex_project: str,
    vertex_region: str,
    vertex_service_account: str,
    vertex_staging_bucket: str,
    vertex_machine_type: str,
    vertex_image: str,
    quantile_levels: str,
    best_params: Output[Artifact],
    metrics: Output[Metrics],
    trials_table: Output[Markdown],
):
    """Search the hyper-parameters on the train/eval splits of ``features``.

    ``best_params``: JSON of the selected trial's hyper-parameters (what train reads;
    the default selection is tune's one-SE rule, see ``components.tune.tune``);
    ``metrics``: the selected trial's eval pinball loss (mean over ``quantile_levels``)
    beside the train period's historical quantiles on eval, trials run/pruned/failed;
    ``trials_table``: every trial as a Markdown table. ``backend="vertex"`` runs the search
    as a Vertex AI HyperparameterTuningJob (``vertex_*``; ``vertex_image``: the tune image
    by digest) on the features' gs:// URIs, with outputs of the same shape.
    """
    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.tune import run

    configure_logging()
    remote = backend == "vertex"  # trials read the gs:// URIs, not this pod's paths
    result = run(
        features.uri if remote else features.path,
        stats.uri if remote else stats.path,
        best_params_path=best_params.path,
        trials_table_path=trials_table.path,
        n_trials=n_trials,
        timeout_s=timeout_s,
        max_epochs=max_epochs,
        seed=seed,
        backend=backend,
        parallel_trials=parallel_trials,
        vertex_project=vertex_project or None,
        vertex_region=vertex_region or None,
        vertex_service_account=vertex_service_account or None,
        vertex_staging_bucket=vertex_staging_bucket or None,
        vertex_machine_type=vertex_machine_type,
        vertex_image=vertex_image or None,
        quantile_levels=quantile_levels,
    )
    publish(result, best_params=best_params, metrics=metrics)
