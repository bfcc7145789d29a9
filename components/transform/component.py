"""KFP wrapper of the transform step (a Lightweight Python Component)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components.images import image_for


@dsl.component(base_image=image_for("transform"), install_kfp_package=False)
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
    import json
    import logging
    import os
    import shutil

    from components.transform.transform import RejectedRowsError, run_transform

    logging.basicConfig(level=logging.INFO)
    os.makedirs(features.path, exist_ok=True)
    os.makedirs(os.path.dirname(rejected.path), exist_ok=True)
    os.makedirs(os.path.dirname(stats.path), exist_ok=True)

    def publish(summary, move: bool) -> None:
        # rejected.csv and stats.json go to their own artifacts; the features directory
        # keeps only the shards. On failure they are copied, so the paths in the error
        # message stay valid.
        transfer = shutil.move if move else shutil.copyfile
        transfer(os.path.join(features.path, "rejected.csv"), rejected.path)
        transfer(os.path.join(features.path, "stats.json"), stats.path)
        rejected.metadata.update({"rows": summary.rejected_rows,
                                  "reasons": dict(summary.rejected_reasons)})

    # On a cluster, features.path is the FUSE mount of features.uri; Dataflow workers
    # need the gs:// URIs themselves.
    remote = runner == "dataflow"
    try:
        summary = run_transform(
            raw.uri if remote else raw.path,
            features.uri if remote else features.path,
            coins=coins,
            split=split,
            max_rejected_fraction=max_rejected_fraction,
            column_mapping=column_mapping or None,
            runner=runner,
        )
    except RejectedRowsError as exc:
        publish(exc.summary, move=False)
        raise

    publish(summary, move=True)
    with open(stats.path) as handle:
        document = json.load(handle)
    stats.metadata.update({"feature_names": document["feature_names"],
                           "splits": document["splits"]})
    features.metadata.update({
        "format": "csv",
        "coins": sorted(summary.coins),
        **{f"{split}_rows": info["rows"] for split, info in summary.splits.items()},
    })
    for split, info in summary.splits.items():
        metrics.log_metric(f"{split}_rows", info["rows"])
    metrics.log_metric("input_rows", summary.input_rows)
    metrics.log_metric("rejected_rows", summary.rejected_rows)
    metrics.log_metric("rejected_fraction", summary.rejected_fraction)
    metrics.log_metric("duplicates", summary.duplicates)
    metrics.log_metric("gaps", summary.gaps)
    metrics.log_metric("coins", len(summary.coins))
