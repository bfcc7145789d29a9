"""KFP wrapper of the train step (a Lightweight Python Component on the train image)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from components.images import image_for


@dsl.component(base_image=image_for("train"), install_kfp_package=False)
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
    ensemble_size: int = 5,
) -> bool:
    """Train with ``best_params`` (an average of ``ensemble_size`` nets with seeds
    ``seed``, ``seed+1``, ...), evaluate on the test split beside persistence, export.

    ``model.path`` becomes a directory holding ``<version>/`` (a TF-Serving SavedModel);
    ``model.metadata``: version, mae_ratio, passed_gate and the test MAEs. ``report``:
    HTML with the plots. Returns whether the model passed the gate
    (``mae_ratio <= max_mae_ratio``); the pipeline's deploy condition reads it.

    A single return value on purpose: kfp.local's condition evaluator resolves a task's
    ``Output`` parameter but not a named field of a NamedTuple, so ``dsl.If`` on a named
    output never fires locally. ``mae_ratio`` is in ``metrics`` and ``model.metadata``.
    """
    import os

    from components.common.cli import configure_logging
    from components.train.train import train

    configure_logging(quiet=False)
    os.makedirs(model.path, exist_ok=True)
    result = train(
        features.path,
        stats.path,
        best_params.path,
        model.path,
        epochs=epochs,
        seed=seed,
        max_mae_ratio=max_mae_ratio,
        model_name=model_name,
        report_path=report.path,
        ensemble_size=ensemble_size,
    )
    model.metadata.update(
        {
            "version": result.version,
            "mae_ratio": result.mae_ratio,
            "passed_gate": result.passed_gate,
            "max_mae_ratio": max_mae_ratio,
            "model_mae": result.metrics["model_mae"],
            "baseline_mae": result.metrics["baseline_mae"],
        }
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    return bool(result.passed_gate)
