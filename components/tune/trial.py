"""One Vertex AI tuning trial: ``python -m components.tune.trial`` (the tune image's entry
point for ``backend="vertex"``).

Vertex AI starts one custom job per trial with the sampled hyper-parameters as
``--<name>=<value>`` arguments. The trial trains that configuration exactly as an Optuna
trial does (``tune.train_trial``), reports the eval split's mean pinball loss over the
quantile levels to Vertex with ``cloudml-hypertune`` (a metric file the service reads),
and writes the trial's row-by-row pinball losses as ``<errors-dir>/<trial id>.json``, so
the tune step can apply the same one-standard-error rule. Paths are local; on Vertex,
``/gcs/<bucket>/...`` is the bucket mounted by Cloud Storage FUSE.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from components.common.cli import quantile_levels
from components.common.contracts import HPARAM_NAMES
from components.common.quantiles import DEFAULT_QUANTILE_LEVELS
from components.tune.search_space import SEARCH_SPACE, validate
from components.tune.vertex import METRIC

log = logging.getLogger(__name__)


def _value(text: str, kind: str):
    number = float(text)
    return int(number) if kind in ("int", "categorical") and number.is_integer() else number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components.tune.trial", description=__doc__)
    parser.add_argument("--features", required=True, help="directory of the feature shards")
    parser.add_argument("--stats", required=True, help="stats.json")
    parser.add_argument("--errors-dir", required=True, help="where <trial id>.json goes")
    parser.add_argument("--max-epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--patience", type=int, required=True)
    parser.add_argument(
        "--quantile-levels",
        type=quantile_levels,
        default=DEFAULT_QUANTILE_LEVELS,
        help="the forecast's quantile levels, comma-separated (default: %(default)s)",
    )
    for p in SEARCH_SPACE:
        parser.add_argument(f"--{p.name}", required=True, type=lambda t, k=p.type: _value(t, k))
    return parser


def main(argv: list[str] | None = None) -> int:
    import hypertune

    from components.common.cli import configure_logging
    from components.tune.tune import train_trial

    configure_logging()
    args = build_parser().parse_args(argv)
    params = {name: getattr(args, name) for name in HPARAM_NAMES}
    validate(params)
    trial_id = os.environ.get("CLOUD_ML_TRIAL_ID", "0")
    value, errors, epochs, baseline = train_trial(
        args.features,
        args.stats,
        params,
        max_epochs=args.max_epochs,
        seed=args.seed,
        patience=args.patience,
        quantile_levels=args.quantile_levels,
    )
    out = Path(args.errors_dir) / f"{trial_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "trial": trial_id,
                "value": value,
                "baseline": baseline,
                "epochs": epochs,
                "errors": errors,
            }
        ),
        encoding="utf-8",
    )
    hypertune.HyperTune().report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag=METRIC, metric_value=value, global_step=epochs
    )
    log.info("trial %s: eval pinball %.6f after %d epochs, %s", trial_id, value, epochs, params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
