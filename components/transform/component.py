"""KFP wrapper of the transform step (a Lightweight Python Component)."""

from kfp.dsl import Artifact, Dataset, Input, Metrics, Output


def transform_op(
    raw: Input[Dataset],
    coins: str,
    split: str,
    max_rejected_fraction: float,
    column_mapping: str,
    runner: str,
    features: Output[Dataset],
    rejected: Output[Dataset],
    stats: Output[Artifact],
    metrics: Output[Metrics],
    dataflow_project: str,
    dataflow_region: str,
    dataflow_temp_location: str,
    dataflow_staging_location: str,
    dataflow_service_account: str,
    dataflow_subnetwork: str,
    dataflow_worker_image: str,
    dataflow_machine_type: str,
    dataflow_max_workers: int,
    dataflow_private_ips: bool,
    dataflow_labels: str,
):
    """Raw CSV → ``features`` (directory of train/eval/test CSV shards), ``rejected`` rows,
    ``stats`` (stats.json: train-only normalisation statistics and counts) and metrics.

    Fails, after writing every output, when more than ``max_rejected_fraction`` of the
    rows are rejected. ``runner="dataflow"`` submits the Beam job to Dataflow with the
    ``dataflow_*`` settings (``dataflow_labels``: a JSON object; ``dataflow_worker_image``:
    the transform-worker image by digest), streams its state to this log and waits; the
    outputs are written to the artifacts' gs:// URIs in the pipeline root. The pipeline
    passes every ``dataflow_*`` value; their defaults are ``dataflow_options``'s.
    """
    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.transform import run
    from components.transform.parameters import parse_dataflow_labels

    configure_logging()
    # On a cluster, a path is the FUSE mount of the artifact's URI; Dataflow workers need
    # the gs:// URIs themselves.
    remote = runner == "dataflow"
    pipeline_options = None
    if remote:
        pipeline_options = {
            "project": dataflow_project,
            "region": dataflow_region,
            "temp_location": dataflow_temp_location,
            "staging_location": dataflow_staging_location,
            "service_account_email": dataflow_service_account,
            "subnetwork": dataflow_subnetwork or None,
            "sdk_container_image": dataflow_worker_image,
            "machine_type": dataflow_machine_type or None,
            "max_num_workers": dataflow_max_workers,
            "no_use_public_ips": dataflow_private_ips,
            "labels": parse_dataflow_labels(dataflow_labels),
        }
    result = run(
        raw.uri if remote else raw.path,
        features_path=features.uri if remote else features.path,
        stats_path=stats.uri if remote else stats.path,
        rejected_path=rejected.uri if remote else rejected.path,
        coins=coins,
        split=split,
        max_rejected_fraction=max_rejected_fraction,
        column_mapping=column_mapping or None,
        runner=runner,
        pipeline_options=pipeline_options,
    )
    publish(result, features=features, rejected=rejected, stats=stats, metrics=metrics)
