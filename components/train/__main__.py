"""CLI of the train step: ``python -m components.train FEATURES_DIR --output-dir DIR``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.common.cli import (
    add_features_arguments,
    add_quiet_argument,
    configure_logging,
    positive_float,
    positive_int,
)
from components.train import train as train_lib
from components.train.data import DataContractError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.train",
        description="Train the next-day close model, evaluate it on the test split beside the "
        "persistence baseline (tomorrow = today) and export a TF-Serving SavedModel. Writes "
        "model/<version>/, report.html and metrics.json into --output-dir and prints the "
        "gate decision: mae_ratio = model MAE / persistence MAE <= --max-mae-ratio.",
    )
    add_features_arguments(parser)
    parser.add_argument("--best-params", type=Path, default=None,
                        help="best_params.json from `python -m components.tune` "
                        "(default: the built-in defaults)")
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write the outputs")
    parser.add_argument("--epochs", type=positive_int, default=train_lib.DEFAULT_EPOCHS,
                        help=f"epochs at most; early stopping on eval (default: {train_lib.DEFAULT_EPOCHS})")
    parser.add_argument("--seed", type=int, default=train_lib.DEFAULT_SEED,
                        help=f"seed of the first net (default: {train_lib.DEFAULT_SEED}; with tune's seed that "
                        "net is tune's best trial)")
    parser.add_argument("--ensemble-size", type=positive_int, default=train_lib.DEFAULT_ENSEMBLE_SIZE,
                        help="nets averaged into the model, seeds SEED, SEED+1, ... "
                        f"(default: {train_lib.DEFAULT_ENSEMBLE_SIZE})")
    parser.add_argument("--max-mae-ratio", type=positive_float, default=1.0,
                        help="gate threshold (default: 1.0, the model must not lose to persistence)")
    parser.add_argument("--model-name", default=train_lib.DEFAULT_MODEL_NAME,
                        help=f"name in the report (default: {train_lib.DEFAULT_MODEL_NAME})")
    parser.add_argument("--version", default=None,
                        help="model version, digits only (default: UTC time YYYYMMDDHHMMSS)")
    parser.add_argument("--require-gate", action="store_true",
                        help="exit with status 3 when the model fails the gate")
    add_quiet_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    out = args.output_dir
    try:
        result = train_lib.train(
            args.features_dir,
            args.stats or args.features_dir / "stats.json",
            args.best_params if args.best_params is not None else {},
            out / "model",
            epochs=args.epochs,
            seed=args.seed,
            max_mae_ratio=args.max_mae_ratio,
            model_name=args.model_name,
            version=args.version,
            report_path=out / "report.html",
            ensemble_size=args.ensemble_size,
        )
    except (DataContractError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n")
    m = result.metrics
    print(f"{'test split':<22}{'model':>12}{'persistence':>14}")
    for name in ("mae", "rmse", "mape", "directional_accuracy"):
        print(f"{name:<22}{m['model_' + name]:>12.4f}{m['baseline_' + name]:>14.4f}")
    verdict = "PASSED" if result.passed_gate else "FAILED"
    print(f"mae_ratio {result.mae_ratio:.4f}: gate {verdict} (max {args.max_mae_ratio:g})")
    print(f"model: {result.export_path}\nreport: {result.report_path}")
    return 3 if args.require_gate and not result.passed_gate else 0


if __name__ == "__main__":
    sys.exit(main())
