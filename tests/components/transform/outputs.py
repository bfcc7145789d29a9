"""Run the transform step with its three outputs in one folder, as the CLI lays them out."""

from __future__ import annotations

import os

from components.transform import TransformResult, run


def run_transform(raw_path: str, output_dir: str, **kwargs) -> TransformResult:
    """``transform.run`` writing shards into ``output_dir`` with ``stats.json`` and
    ``rejected.csv`` beside them."""
    return run(
        raw_path,
        features_path=output_dir,
        stats_path=os.path.join(output_dir, "stats.json"),
        rejected_path=os.path.join(output_dir, "rejected.csv"),
        **kwargs,
    )
