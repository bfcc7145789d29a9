"""CLI of the tune step: ``python -m components.tune FEATURES_DIR --output-dir DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.common.cli import (
    add_features_arguments,
    add_quiet_argument,
    configure_logging,
    positive_float,
    positive_int,
)
from components.train.data import DataContractError
from components.tune import tune as tune_lib


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.tune",
        description="Hyper-parameter search for the next-day close model (Optuna: seeded TPE, "
        "median pruning). Objective: eval-split MAE of the predicted next-day close. Writes "
        "best_params.json (read by `python -m components.train --best-params`), trials.md "
        "(every trial) and metrics.json into --output-dir.",
    )
    add_features_arguments(parser)
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write the outputs")
    parser.add_argument("--n-trials", type=positive_int, default=tune_lib.DEFAULT_N_TRIALS,
                        help=f"trials to run (default: {tune_lib.DEFAULT_N_TRIALS})")
    parser.add_argument("--timeout-s", type=positive_float, default=tune_lib.DEFAULT_TIMEOUT_S,
                        help="no new trial starts after this many seconds "
                        f"(default: {tune_lib.DEFAULT_TIMEOUT_S})")
    parser.add_argument("--max-epochs", type=positive_int, default=tune_lib.DEFAULT_MAX_EPOCHS,
                        help="epochs per trial at most; early stopping usually ends sooner "
                        f"(default: {tune_lib.DEFAULT_MAX_EPOCHS})")
    parser.add_argument("--seed", type=int, default=tune_lib.DEFAULT_SEED,
                        help=f"sampler and model seed (default: {tune_lib.DEFAULT_SEED})")
    parser.add_argument("--selection", choices=tune_lib.SELECTIONS, default=tune_lib.DEFAULT_SELECTION,
                        help="which trial's parameters to write: one_se = the largest l2 among the "
                        "trials within one standard error of the lowest eval MAE, min = the lowest "
                        f"eval MAE (default: {tune_lib.DEFAULT_SELECTION})")
    parser.add_argument("--backend", default="optuna",
                        help="optuna (local, default); vertex is not implemented yet")
    add_quiet_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    stats = args.stats or args.features_dir / "stats.json"
    try:
        result = tune_lib.tune(
            args.features_dir, stats,
            n_trials=args.n_trials, timeout_s=args.timeout_s, max_epochs=args.max_epochs,
            seed=args.seed, backend=args.backend, selection=args.selection,
        )
    except (DataContractError, NotImplementedError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.output_dir
    tune_lib.write_outputs(
        result,
        best_params_path=out / "best_params.json",
        table_path=out / "trials.md",
        metrics_path=out / "metrics.json",
    )
    print(
        f"selected trial {result.best_trial} ({result.selection}): eval price MAE {result.best_value:.4f} "
        f"vs persistence {result.baseline_eval_mae:.4f} (ratio {result.metrics()['best_eval_mae_ratio']:.4f}); "
        f"lowest: trial {result.lowest_trial}, {result.lowest_value:.4f}; "
        f"{result.trials_run} trials, {result.trials_pruned} pruned, {result.elapsed_s:.1f} s\n"
        f"best params: {out / 'best_params.json'}\ntrials table: {out / 'trials.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
