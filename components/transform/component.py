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
):
    """Raw CSV → ``features`` (directory of train/eval/test CSV shards), ``rejected`` rows,
    ``stats`` (stats.json: train-only normalisation statistics and counts) and metrics.

    Fails, after writing every output, when more than ``max_rejected_fraction`` of the
    rows are rejected. ``runner="dataflow"`` needs Dataflow options, which this wrapper
    does not take yet (cloud issue).
    """
    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.transform import run

    configure_logging()
    # On a cluster, a path is the FUSE mount of the artifact's URI; Dataflow workers need
    # the gs:// URIs themselves.
    remote = runner == "dataflow"
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
    )
    publish(result, features=features, rejected=rejected, stats=stats, metrics=metrics)
