"""CLI of the train step: ``python -m components.train FEATURES_DIR --output-dir DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.common.cli import (
    EXIT_FAILED,
    EXIT_OK,
    add_features_arguments,
    add_step_option,
    defaults_of,
    positive_float,
    positive_int,
    quantile_levels,
    run_step,
    step_parser,
)
from components.common.quantiles import GATE_METRICS, quantile_levels_problem, quantile_summary
from components.common.results import ParameterError
from components.train.champion import ChampionError
from components.train.data import DataContractError
from components.train.train import TrainResult, run

DEFAULTS = defaults_of(run)


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    parser = step_parser(
        "python -m components.train",
        "Train the quantile forecast of tomorrow's log return (its median is the point "
        "forecast), score it on the test split beside persistence (tomorrow = today), the "
        "historical quantiles and GARCH(1,1)-t, and export a TF-Serving SavedModel. Writes "
        "model/<version>/, report.html and metrics.json into --output-dir and prints the gate "
        "decision: with --gate-metric pinball, a pinball loss significantly below the "
        "historical quantiles' and a 90% interval coverage within --coverage-tolerance of "
        "0.90; with --gate-metric mae, mae_ratio = model MAE / persistence MAE <= "
        "--max-mae-ratio.",
        "  python -m components.train /tmp/f --best-params /tmp/tune/best_params.json \\\n"
        "      --output-dir /tmp/train\n"
        "  python -m components.train /tmp/f --output-dir /tmp/train --epochs 20 "
        "--ensemble-size 1 --require-gate\n"
        "  python -m components.train /tmp/f --output-dir /tmp/train "
        "--quantile-levels 0.05,0.5,0.95 --gate-metric pinball --coverage-tolerance 0.03",
    )
    add_features_arguments(parser)
    add_step_option(
        parser,
        "--best-params",
        d,
        "best_params.json from `python -m components.tune` (default: the built-in defaults)",
        type=Path,
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write the outputs")
    add_step_option(
        parser, "--epochs", d, "epochs at most; early stopping on eval", type=positive_int
    )
    add_step_option(
        parser,
        "--seed",
        d,
        "seed of the first net (with tune's seed that net is tune's best trial)",
        type=int,
    )
    add_step_option(
        parser,
        "--ensemble-size",
        d,
        "nets averaged into the model, seeds SEED, SEED+1, ...",
        type=positive_int,
    )
    add_step_option(
        parser,
        "--quantile-levels",
        d,
        "the forecast's quantile levels, comma-separated: increasing, strictly between 0 and "
        "1, with 0.5 (the median), at most 19; with --gate-metric pinball also 0.05 and 0.95",
        type=quantile_levels,
    )
    add_step_option(
        parser,
        "--gate-metric",
        d,
        "what the gate compares: pinball (quantile loss against the historical quantiles, "
        "and the 90%% interval's coverage) or mae (point forecast against persistence)",
        choices=GATE_METRICS,
    )
    add_step_option(
        parser,
        "--coverage-tolerance",
        d,
        "gate (pinball): the 90%% interval's test coverage must be within this of 0.90",
        type=positive_float,
    )
    add_step_option(
        parser,
        "--max-mae-ratio",
        d,
        "gate (mae): the model's test MAE over persistence's must be at most this",
        type=positive_float,
    )
    add_step_option(
        parser,
        "--min-improvement",
        d,
        "gate: fraction by which the loss (pinball or MAE) must be below the champion's",
        type=float,
    )
    add_step_option(
        parser,
        "--significance",
        d,
        "gate: the Diebold-Mariano p-values (against the historical quantiles with pinball, "
        "and the champion) must be below this",
        type=float,
    )
    champion = parser.add_argument_group(
        "champion",
        "the version the deploy target serves now, scored beside the model (none given: "
        "persistence alone decides)",
    )
    champion.add_argument(
        "--model-repository",
        help="the deploy target's model repository: for local, the directory whose CURRENT "
        "version is the champion; for gke and vertex, the gs:// models bucket",
    )
    add_step_option(
        champion,
        "--deploy-target",
        d,
        "where the champion is served: local, gke or vertex (default: local when "
        "--model-repository is given)",
    )
    add_step_option(
        champion,
        "--serving-namespace",
        d,
        "gke: namespace of the serving Deployment ($KUBECONFIG, else in-cluster)",
    )
    add_step_option(champion, "--vertex-project", d, "vertex: the GCP project")
    add_step_option(champion, "--vertex-region", d, "vertex: the Vertex AI region")
    add_step_option(
        champion,
        "--vertex-endpoint",
        d,
        "vertex: endpoint display name (default: <model-name>-endpoint)",
    )
    add_step_option(
        parser, "--data-sha256", d, "SHA-256 of the raw data (lineage; identical-model check)"
    )
    add_step_option(parser, "--model-name", d, "name in the report")
    add_step_option(
        parser,
        "--version",
        d,
        "model version, digits only (default: UTC time YYYYMMDDHHMMSS and 4 random digits)",
    )
    parser.add_argument(
        "--require-gate",
        action="store_true",
        help="exit with status 1 when the model fails the gate",
    )
    return parser


def _call(args: argparse.Namespace) -> TrainResult:
    # The levels alone were checked as the option was read; the gate may need more of them.
    problem = quantile_levels_problem(args.quantile_levels, gate_metric=args.gate_metric)
    if problem:
        raise ParameterError(f"argument --quantile-levels: {problem}")
    out = args.output_dir
    return run(
        args.features_dir,
        args.stats or args.features_dir / "stats.json",
        args.best_params,
        model_path=out / "model",
        report_path=out / "report.html",
        metrics_path=out / "metrics.json",
        epochs=args.epochs,
        seed=args.seed,
        ensemble_size=args.ensemble_size,
        max_mae_ratio=args.max_mae_ratio,
        model_name=args.model_name,
        version=args.version,
        min_improvement=args.min_improvement,
        significance=args.significance,
        model_repository=args.model_repository,
        deploy_target=args.deploy_target or ("local" if args.model_repository else None),
        serving_namespace=args.serving_namespace,
        vertex_project=args.vertex_project,
        vertex_region=args.vertex_region,
        vertex_endpoint=args.vertex_endpoint,
        data_sha256=args.data_sha256,
        quantile_levels=args.quantile_levels,
        gate_metric=args.gate_metric,
        coverage_tolerance=args.coverage_tolerance,
    )


def _render(result: TrainResult, args) -> str:
    m = result.scores
    lines = [f"{'test split':<22}{'model':>12}{'persistence':>14}"]
    for name in ("mae", "rmse", "mape", "directional_accuracy"):
        lines.append(f"{name:<22}{m['model_' + name]:>12.4f}{m['baseline_' + name]:>14.4f}")
    verdict = "PASSED" if result.passed_gate else "FAILED"
    lines.append(
        f"mae_ratio {result.mae_ratio:.4f} (max {result.max_mae_ratio:g} with --gate-metric mae)"
    )
    lines.append(quantile_summary(m))
    lines.append(f"gate {verdict} (gate metric {args.gate_metric}): {result.gate_reason}")
    lines.append(f"model: {result.export_path}\nreport: {result.report_path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_step(
        build_parser(),
        argv,
        _call,
        _render,
        failures=(
            DataContractError,
            ChampionError,
            ValueError,
            FileNotFoundError,
            FileExistsError,
        ),
        exit_status=lambda result, args: (
            EXIT_FAILED if args.require_gate and not result.passed_gate else EXIT_OK
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
