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
    best_params: Output[Artifact],
    metrics: Output[Metrics],
    trials_table: Output[Markdown],
):
    """Search the hyper-parameters on the train/eval splits of ``features``.

    ``best_params``: JSON of the selected trial's hyper-parameters (what train reads;
    the default selection is tune's one-SE rule, see ``components.tune.tune``);
    ``metrics``: best eval price MAE, persistence on eval, trials run/pruned/failed;
    ``trials_table``: every trial as a Markdown table. ``backend`` other than
    ``"optuna"`` fails with NotImplementedError (Vertex AI comes with the cloud issue).
    """
    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.tune import run

    configure_logging()
    result = run(
        features.path,
        stats.path,
        best_params_path=best_params.path,
        trials_table_path=trials_table.path,
        n_trials=n_trials,
        timeout_s=timeout_s,
        max_epochs=max_epochs,
        seed=seed,
        backend=backend,
    )
    publish(result, best_params=best_params, metrics=metrics)
