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
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
    source_run: str = "",
) -> bool:
    """Train with ``best_params``, evaluate on the test split beside persistence, export.

    ``model.path`` becomes a directory holding ``<version>/`` (a TF-Serving SavedModel);
    ``model.metadata``: version, mae_ratio, passed_gate and the test MAEs. ``report``:
    HTML with the plots. ``source_run`` (the pipeline passes
    ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``) gives the version's last digits, so runs that
    finish in the same second get distinct versions. Returns whether the model passed the gate
    (``mae_ratio <= max_mae_ratio``); the pipeline's deploy condition reads it.

    A single return value on purpose: kfp.local's condition evaluator resolves a task's
    ``Output`` parameter but not a named field of a NamedTuple, so ``dsl.If`` on a named
    output never fires locally. ``mae_ratio`` is in ``metrics`` and ``model.metadata``.
    """
    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.train import new_version, run

    configure_logging()
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
    )
    publish(result, model=model, metrics=metrics)
    return result.passed_gate
