"""The five-step KFP v2 pipeline: ingest → transform → tune → train → (gate) deploy.

One definition serves both backends: ``kfp.local`` on a laptop (``python -m pipeline
run-local``) and a Kubeflow Pipelines install on GKE (``make pipeline``). The backends
differ only in parameter values (see ``pipeline.profiles``).

Compile it with ``python pipeline/crypto_pipeline.py out.yaml`` or
``python -m pipeline compile --output out.yaml``.
"""

import sys
from pathlib import Path

from kfp import compiler, dsl, kubernetes

from components.deploy.component import deploy_op
from components.ingest.component import ingest_op
from components.ingest.ingest import DEFAULT_SHA256, DEFAULT_SOURCE
from components.placement import PIPELINES_LABEL, PIPELINES_TAINT
from components.train.component import train_op
from components.transform.component import transform_op
from components.tune.component import tune_op

PIPELINE_NAME = "crypto-forecast"

# GKE API spelling of a taint effect -> Kubernetes spelling (what a toleration names).
_KUBERNETES_EFFECT = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule",
                      "NO_EXECUTE": "NoExecute"}

#: One line per pipeline parameter, for ``--help`` and the README.
PARAMETER_HELP = {
    "lake": "data lake for the raw CSV: a local directory or gs://bucket/prefix",
    "model_repository": "where deploy publishes models (TF-Serving layout)",
    "source": "raw CSV: local path, https URL or gs:// URI",
    "source_sha256": "expected SHA-256 of the source; empty: not checked",
    "column_mapping": 'JSON {canonical: your_column}, e.g. {"date": "Date", "slug": "Name"}',
    "coins": "coin slugs to model, comma-separated, or 'all'",
    "split": "train,eval,test fractions of each coin's dates, in time order",
    "max_rejected_fraction": "fail the transform when more of the rows are rejected",
    "runner": "Beam runner of the transform: local (in-process) or dataflow",
    "tune_backend": "hyper-parameter search backend: optuna",
    "n_trials": "hyper-parameter trials",
    "tune_timeout_s": "time budget of the search, seconds",
    "tune_max_epochs": "epochs per trial (with pruning and early stopping)",
    "epochs": "maximum epochs of the final training (early stopping on eval)",
    "seed": "random seed of search and training",
    "max_mae_ratio": "deploy only if model MAE / persistence MAE is at most this",
    "model_name": "name of the model in the repository",
    "deploy_target": "local (model repository + server); vertex and gke are not built yet",
}


def on_pipelines_pool(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Schedule ``task``'s pod on the spot ``pipelines`` node pool (node selector plus
    toleration of its taint). This goes into the compiled platform spec; ``kfp.local``
    ignores it."""
    for key, value in PIPELINES_LABEL.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    kubernetes.add_toleration(
        task,
        key=PIPELINES_TAINT["key"],
        operator="Equal",
        value=PIPELINES_TAINT["value"],
        effect=_KUBERNETES_EFFECT[PIPELINES_TAINT["effect"]],
    )
    return task


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Forecast the next day's closing price of a coin from its daily OHLCV "
    "history; deploy the model only if it beats the persistence forecast.",
)
def crypto_pipeline(
    lake: str,
    model_repository: str,
    source: str = DEFAULT_SOURCE,
    source_sha256: str = DEFAULT_SHA256,
    column_mapping: str = "",
    coins: str = "bitcoin",
    split: str = "0.7,0.15,0.15",
    max_rejected_fraction: float = 0.05,
    runner: str = "local",
    tune_backend: str = "optuna",
    n_trials: int = 16,
    tune_timeout_s: int = 600,
    tune_max_epochs: int = 60,
    epochs: int = 200,
    seed: int = 42,
    max_mae_ratio: float = 1.0,
    model_name: str = "btc-forecast",
    deploy_target: str = "local",
):
    """Wire the steps. ``lake`` and ``model_repository`` come from the profile."""
    ingest = ingest_op(
        source=source,
        lake=lake,
        expected_sha256=source_sha256,
        column_mapping=column_mapping,
    ).set_display_name("ingest")
    on_pipelines_pool(ingest)
    transform = transform_op(
        raw=ingest.outputs["raw"],
        coins=coins,
        split=split,
        max_rejected_fraction=max_rejected_fraction,
        column_mapping=column_mapping,
        runner=runner,
    ).set_display_name("transform")
    on_pipelines_pool(transform)
    tune = tune_op(
        features=transform.outputs["features"],
        stats=transform.outputs["stats"],
        n_trials=n_trials,
        timeout_s=tune_timeout_s,
        max_epochs=tune_max_epochs,
        seed=seed,
        backend=tune_backend,
    ).set_display_name("tune")
    on_pipelines_pool(tune)
    train = train_op(
        features=transform.outputs["features"],
        stats=transform.outputs["stats"],
        best_params=tune.outputs["best_params"],
        epochs=epochs,
        seed=seed,
        max_mae_ratio=max_mae_ratio,
        model_name=model_name,
    ).set_display_name("train")
    on_pipelines_pool(train)
    with dsl.If(train.outputs["Output"] == True, name="passed-evaluation-gate"):  # noqa: E712
        deploy = deploy_op(
            model=train.outputs["model"],
            target=deploy_target,
            model_repository=model_repository,
            model_name=model_name,
            source_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        ).set_display_name("deploy")
        on_pipelines_pool(deploy)


def compile_pipeline(output: str | Path) -> Path:
    """Compile the pipeline to a KFP IR YAML file and return its path."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=crypto_pipeline, package_path=str(output))
    return output


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python pipeline/crypto_pipeline.py OUTPUT.yaml", file=sys.stderr)
        sys.exit(2)
    print(compile_pipeline(sys.argv[1]))
