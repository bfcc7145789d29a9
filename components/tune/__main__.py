"""CLI of the tune step: ``python -m components.tune FEATURES_DIR --output-dir DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.common.cli import (
    add_features_arguments,
    add_step_option,
    defaults_of,
    positive_float,
    positive_int,
    quantile_levels,
    run_step,
    step_parser,
)
from components.train import DataContractError
from components.tune.parameters import BACKENDS, SELECTIONS
from components.tune.tune import TuneResult, run

DEFAULTS = defaults_of(run)


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    parser = step_parser(
        "python -m components.tune",
        "Hyper-parameter search for the next-day quantile forecast (Optuna: seeded TPE, median "
        "pruning). Objective: the eval split's mean pinball loss over --quantile-levels "
        "(lower is better), reported beside the train period's historical quantiles. Writes "
        "best_params.json (read by `python -m components.train --best-params`), trials.md "
        "(every trial) and metrics.json into --output-dir.",
        "  python -m components.transform ../shared/data/crypto-markets.csv --output-dir /tmp/f\n"
        "  python -m components.tune /tmp/f --output-dir /tmp/tune --n-trials 8 --max-epochs 20\n"
        "  python -m components.tune /tmp/f --output-dir /tmp/tune --quantile-levels 0.1,0.5,0.9",
    )
    add_features_arguments(parser)
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write the outputs")
    add_step_option(parser, "--n-trials", d, "trials to run", type=positive_int)
    add_step_option(
        parser,
        "--timeout-s",
        d,
        "no new trial starts after this many seconds",
        parameter="timeout_s",
        type=positive_float,
    )
    add_step_option(
        parser,
        "--max-epochs",
        d,
        "epochs per trial at most; early stopping usually ends sooner",
        type=positive_int,
    )
    add_step_option(parser, "--seed", d, "sampler and model seed", type=int)
    add_step_option(
        parser,
        "--selection",
        d,
        "which trial's parameters to write: one_se = the largest l2 among the trials within "
        "one standard error of the lowest eval pinball loss, min = the lowest eval pinball",
        choices=SELECTIONS,
    )
    add_step_option(
        parser,
        "--backend",
        d,
        "optuna (in this process); vertex (Vertex AI, settings from the pipeline)",
        choices=BACKENDS,
    )
    add_step_option(
        parser,
        "--quantile-levels",
        d,
        "the forecast's quantile levels, comma-separated: increasing, strictly between 0 and "
        "1, with 0.5 (the median), at most 19 (train's --quantile-levels)",
        type=quantile_levels,
    )
    return parser


def _call(args: argparse.Namespace) -> TuneResult:
    out = args.output_dir
    return run(
        args.features_dir,
        args.stats or args.features_dir / "stats.json",
        best_params_path=out / "best_params.json",
        trials_table_path=out / "trials.md",
        metrics_path=out / "metrics.json",
        n_trials=args.n_trials,
        timeout_s=args.timeout_s,
        max_epochs=args.max_epochs,
        seed=args.seed,
        backend=args.backend,
        selection=args.selection,
        quantile_levels=args.quantile_levels,
    )


def _render(result: TuneResult, args) -> str:
    out = args.output_dir
    return (
        f"selected trial {result.best_trial} ({result.selection}): eval pinball "
        f"{result.best_value:.6f} vs historical quantiles {result.baseline_eval_pinball:.6f} "
        f"(ratio {result.metrics()['best_eval_pinball_ratio']:.4f}); lowest: trial "
        f"{result.lowest_trial}, {result.lowest_value:.6f}; {result.trials_run} trials, "
        f"{result.trials_pruned} pruned, "
        f"{result.elapsed_s:.1f} s\nbest params: {out / 'best_params.json'}\n"
        f"trials table: {out / 'trials.md'}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_step(
        build_parser(),
        argv,
        _call,
        _render,
        failures=(DataContractError, NotImplementedError, FileNotFoundError, RuntimeError),
    )


if __name__ == "__main__":
    sys.exit(main())
