"""The five-step KFP v2 pipeline: ingest → transform → tune → train → (gate) deploy.

One definition serves both backends: ``kfp.local`` on a laptop (``python -m pipeline
run-local``) and a Kubeflow Pipelines install on GKE (``make pipeline``). The backends
differ only in parameter values (see ``pipeline.profiles``) and in the images the
pipeline is built with: ``build_pipeline(images)`` takes the mapping step → image
reference (``components.images``; ``make images`` writes it to ``build/images.json``).

Every parameter's default is the default of the step function it feeds
(``PARAMETER_SOURCES``), so the pipeline, the step CLIs and the functions cannot disagree.
"""

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kfp import compiler, dsl, kubernetes

from components import deploy, ingest, train, transform, tune
from components.common.cli import defaults_of
from components.common.placement import PIPELINES_LABEL, PIPELINES_TOLERATION
from components.deploy.component import deploy_op
from components.images import DATAFLOW_WORKER, STEPS, image_refs, validate_images
from components.ingest.component import ingest_op
from components.train.component import train_op
from components.transform.component import transform_op
from components.tune.component import tune_op
from pipeline.parameters import PARAMETER_HELP, PARAMETER_SOURCES  # noqa: F401 (re-exported)
from pipeline.revision import git_revision

PIPELINE_NAME = "crypto-forecast"

#: The KFP wrapper of each step (a plain function; ``build_pipeline`` gives it its image).
STEP_FUNCTIONS: dict[str, Callable] = {
    "ingest": ingest_op,
    "transform": transform_op,
    "tune": tune_op,
    "train": train_op,
    "deploy": deploy_op,
}
#: The step function behind each wrapper: where the defaults are written.
STEP_RUNS: dict[str, Callable] = {
    "ingest": ingest.run,
    "transform": transform.run,
    "tune": tune.run,
    "train": train.run,
    "deploy": deploy.run,
    # The transform's Dataflow settings (used with runner=dataflow).
    "dataflow": transform.dataflow_options,
}


def as_parameter(value: Any) -> Any:
    """A step default as a pipeline parameter value: None ("not given") is ``""``."""
    return "" if value is None else value


def step_default(step: str, name: str) -> Any:
    return as_parameter(defaults_of(STEP_RUNS[step])[name])


#: Default of every pipeline parameter that has one.
DEFAULTS: dict[str, Any] = {
    name: step_default(*sources[0]) for name, sources in PARAMETER_SOURCES.items()
}

#: CPU (cores) and memory (bytes, K8s units) each step's pod asks for and may use at most:
#: ``(cpu request, cpu limit, memory request, memory limit)``. The pipelines pool's default
#: e2-standard-4 node has about 3.9 cores and 13 GB allocatable: tune or train fits beside
#: the small steps. Measured locally on the shared data: transform peaks near 350 MB (Beam
#: in-process), tune and train near 1.5 GB (TensorFlow); the limits leave headroom for a
#: larger coin set.
RESOURCES: dict[str, tuple[str, str, str, str]] = {
    "ingest": ("0.25", "1", "512M", "2G"),
    "transform": ("1", "2", "2G", "4G"),
    "tune": ("2", "3", "4G", "8G"),
    "train": ("2", "3", "4G", "8G"),
    "deploy": ("0.5", "1", "2G", "4G"),
}
#: Retries of a failed task on the cluster: spot nodes are reclaimed with 30 s notice and
#: the pod dies with them. Backoff 60 s, doubling, at most 10 minutes between attempts.
#: Every step is idempotent (content-addressed lake, new model versions never overwrite).
RETRIES = {
    "num_retries": 2,
    "backoff_duration": "60s",
    "backoff_factor": 2.0,
    "backoff_max_duration": "600s",
}


def fit_for_spot_nodes(task: dsl.PipelineTask, step: str, retries: bool) -> dsl.PipelineTask:
    """Requests and limits (a pod without them is BestEffort: first to be evicted) and,
    with ``retries``, the retry policy for preempted pods."""
    cpu_request, cpu_limit, memory_request, memory_limit = RESOURCES[step]
    task.set_cpu_request(cpu_request).set_cpu_limit(cpu_limit)
    task.set_memory_request(memory_request).set_memory_limit(memory_limit)
    if retries:
        task.set_retry(**RETRIES)
    return task


def on_pipelines_pool(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Schedule ``task``'s pod on the spot ``pipelines`` node pool (node selector plus
    toleration of its taint). This goes into the compiled platform spec; ``kfp.local``
    ignores it."""
    for key, value in PIPELINES_LABEL.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    kubernetes.add_toleration(task, **PIPELINES_TOLERATION)
    return task


def step_component(step: str, image: str):
    """The KFP component of one step: its wrapper as a Lightweight Python Component on
    ``image``, which holds kfp and the project (nothing is pip-installed at run time)."""
    return dsl.component(STEP_FUNCTIONS[step], base_image=image, install_kfp_package=False)


def build_pipeline(images: Mapping[str, str] | None = None, *, retries: bool = True):
    """The pipeline with each step on its image (default: ``components.images.image_refs()``,
    names that are never pushed; enough for kfp.local's SubprocessRunner).

    ``retries=False`` leaves out the retry policy: kfp.local honours it, and a local step
    that failed on its input would only fail again after minutes of backoff."""
    images = validate_images(dict(images if images is not None else image_refs()))
    ops = {step: step_component(step, images[step]) for step in STEPS}
    d = DEFAULTS
    lineage = json.dumps({"git revision": git_revision(), "images": images}, sort_keys=True)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Forecast quantiles of the next day's return of a coin from its daily "
        "OHLCV history; deploy the model only if it beats its baseline (historical quantiles "
        "with gate_metric=pinball, persistence with mae) and the model being served.",
    )
    def crypto_pipeline(
        lake: str,
        model_repository: str,
        source: str = d["source"],
        source_sha256: str = d["source_sha256"],
        column_mapping: str = d["column_mapping"],
        coins: str = d["coins"],
        split: str = d["split"],
        max_rejected_fraction: float = d["max_rejected_fraction"],
        runner: str = d["runner"],
        dataflow_project: str = d["dataflow_project"],
        dataflow_region: str = d["dataflow_region"],
        dataflow_temp_location: str = d["dataflow_temp_location"],
        dataflow_staging_location: str = d["dataflow_staging_location"],
        dataflow_service_account: str = d["dataflow_service_account"],
        dataflow_subnetwork: str = d["dataflow_subnetwork"],
        dataflow_machine_type: str = d["dataflow_machine_type"],
        dataflow_max_workers: int = d["dataflow_max_workers"],
        dataflow_private_ips: bool = d["dataflow_private_ips"],
        dataflow_labels: str = d["dataflow_labels"],
        tune_backend: str = d["tune_backend"],
        parallel_trials: int = d["parallel_trials"],
        vertex_project: str = d["vertex_project"],
        vertex_region: str = d["vertex_region"],
        vertex_service_account: str = d["vertex_service_account"],
        vertex_staging_bucket: str = d["vertex_staging_bucket"],
        vertex_machine_type: str = d["vertex_machine_type"],
        n_trials: int = d["n_trials"],
        tune_timeout_s: int = d["tune_timeout_s"],
        tune_max_epochs: int = d["tune_max_epochs"],
        epochs: int = d["epochs"],
        seed: int = d["seed"],
        max_mae_ratio: float = d["max_mae_ratio"],
        min_improvement: float = d["min_improvement"],
        significance: float = d["significance"],
        quantile_levels: str = d["quantile_levels"],
        gate_metric: str = d["gate_metric"],
        coverage_tolerance: float = d["coverage_tolerance"],
        model_name: str = d["model_name"],
        deploy_target: str = d["deploy_target"],
        vertex_endpoint: str = d["vertex_endpoint"],
        serving_machine_type: str = d["serving_machine_type"],
        serving_min_replicas: int = d["serving_min_replicas"],
        serving_max_replicas: int = d["serving_max_replicas"],
        serving_service_account: str = d["serving_service_account"],
        serving_namespace: str = d["serving_namespace"],
        serving_k8s_service_account: str = d["serving_k8s_service_account"],
    ):
        """Wire the steps. ``lake`` and ``model_repository`` come from the profile."""
        ingest_task = ops["ingest"](
            source=source,
            lake=lake,
            expected_sha256=source_sha256,
            column_mapping=column_mapping,
        ).set_display_name("ingest")
        # A scheduled run re-reads a source a user may refresh under the same name: a cached
        # ingest would hide the new bytes (the run's arguments are fixed when it is scheduled).
        ingest_task.set_caching_options(False)
        transform_task = ops["transform"](
            raw=ingest_task.outputs["raw"],
            coins=coins,
            split=split,
            max_rejected_fraction=max_rejected_fraction,
            column_mapping=column_mapping,
            runner=runner,
            dataflow_project=dataflow_project,
            dataflow_region=dataflow_region,
            dataflow_temp_location=dataflow_temp_location,
            dataflow_staging_location=dataflow_staging_location,
            dataflow_service_account=dataflow_service_account,
            dataflow_subnetwork=dataflow_subnetwork,
            # The Dataflow workers' SDK image is a build output, not a run parameter.
            dataflow_worker_image=images.get(DATAFLOW_WORKER, ""),
            dataflow_machine_type=dataflow_machine_type,
            dataflow_max_workers=dataflow_max_workers,
            dataflow_private_ips=dataflow_private_ips,
            dataflow_labels=dataflow_labels,
        ).set_display_name("transform")
        tune_task = ops["tune"](
            features=transform_task.outputs["features"],
            stats=transform_task.outputs["stats"],
            n_trials=n_trials,
            timeout_s=tune_timeout_s,
            max_epochs=tune_max_epochs,
            seed=seed,
            backend=tune_backend,
            parallel_trials=parallel_trials,
            vertex_project=vertex_project,
            vertex_region=vertex_region,
            vertex_service_account=vertex_service_account,
            vertex_staging_bucket=vertex_staging_bucket,
            vertex_machine_type=vertex_machine_type,
            # Each trial runs the tune step's own image (by digest in a cloud build).
            vertex_image=images["tune"],
            quantile_levels=quantile_levels,
        ).set_display_name("tune")
        train_task = ops["train"](
            features=transform_task.outputs["features"],
            stats=transform_task.outputs["stats"],
            best_params=tune_task.outputs["best_params"],
            epochs=epochs,
            seed=seed,
            max_mae_ratio=max_mae_ratio,
            model_name=model_name,
            raw=ingest_task.outputs["raw"],
            model_repository=model_repository,
            deploy_target=deploy_target,
            min_improvement=min_improvement,
            significance=significance,
            source_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            lineage=lineage,
            # The deploy target's settings: where train finds the champion.
            serving_namespace=serving_namespace,
            vertex_project=vertex_project,
            vertex_region=vertex_region,
            vertex_endpoint=vertex_endpoint,
            quantile_levels=quantile_levels,
            gate_metric=gate_metric,
            coverage_tolerance=coverage_tolerance,
        ).set_display_name("train")
        tasks = {
            "ingest": ingest_task,
            "transform": transform_task,
            "tune": tune_task,
            "train": train_task,
        }
        with dsl.If(train_task.outputs["Output"] == True, name="passed-evaluation-gate"):  # noqa: E712
            deploy_task = ops["deploy"](
                model=train_task.outputs["model"],
                target=deploy_target,
                model_repository=model_repository,
                model_name=model_name,
                source_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                # The server the cloud targets run is the deploy step's own image.
                image=images["deploy"],
                vertex_project=vertex_project,
                vertex_region=vertex_region,
                vertex_endpoint=vertex_endpoint,
                serving_machine_type=serving_machine_type,
                serving_min_replicas=serving_min_replicas,
                serving_max_replicas=serving_max_replicas,
                serving_service_account=serving_service_account,
                serving_namespace=serving_namespace,
                serving_k8s_service_account=serving_k8s_service_account,
            ).set_display_name("deploy")
            # Publishing is an effect, not a value: a cached deploy would publish nothing.
            deploy_task.set_caching_options(False)
            tasks["deploy"] = deploy_task
        for step, task in tasks.items():
            on_pipelines_pool(fit_for_spot_nodes(task, step, retries))

    return crypto_pipeline


def pipeline_inputs() -> list[tuple[str, type, Any]]:
    """(name, python type, default or None) of every pipeline parameter, in order."""
    import inspect

    signature = inspect.signature(build_pipeline().pipeline_func)
    return [
        (name, p.annotation, None if p.default is inspect.Parameter.empty else p.default)
        for name, p in signature.parameters.items()
    ]


def compile_pipeline(
    output: str | Path, images: Mapping[str, str] | None = None, *, retries: bool = True
) -> Path:
    """Compile the pipeline with ``images`` to a KFP IR YAML file and return its path."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    pipeline = build_pipeline(images, retries=retries)
    # Compiled beside the target, then renamed: two runs compiling into one --root at
    # the same time never read each other's half-written file.
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".yaml")
    os.close(fd)
    try:
        compiler.Compiler().compile(pipeline_func=pipeline, package_path=tmp)
        os.replace(tmp, output)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return output
