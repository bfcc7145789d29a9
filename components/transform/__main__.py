"""CLI of the transform step: ``python -m components.transform INPUT --output-dir DIR``."""

from __future__ import annotations

import argparse
import os
import sys

from components.common.cli import add_step_option, defaults_of, run_step, step_parser
from components.common.schema import SchemaError
from components.common.uris import is_local, local_dir_problem, scheme_problem
from components.transform.errors import TransformError, TransformParameterError
from components.transform.parameters import RUNNERS
from components.transform.transform import TransformResult, run

DEFAULTS = defaults_of(run)
STATS_FILE = "stats.json"
REJECTED_FILE = "rejected.csv"


def build_parser() -> argparse.ArgumentParser:
    parser = step_parser(
        "python -m components.transform",
        "Parse, validate, feature-engineer and time-split a raw OHLCV CSV with Apache Beam. "
        f"Writes train/eval/test CSV shards into --output-dir, with {STATS_FILE} and "
        f"{REJECTED_FILE} beside them unless --stats / --rejected say otherwise.",
        "  python -m components.transform ../shared/data/crypto-markets.csv --output-dir /tmp/f\n"
        "  python -m components.transform prices.csv --output-dir /tmp/f --coins all \\\n"
        '      --column-mapping \'{"date": "Date", "slug": "Name"}\'\n'
        "  python -m components.transform gs://lake/raw.csv --output-dir gs://art/features \\\n"
        "      --runner dataflow --project P --region europe-west1 --temp-location gs://t/tmp \\\n"
        "      --staging-location gs://s/staging \\\n"
        "      --service-account-email df@P.iam.gserviceaccount.com \\\n"
        "      --sdk-container-image REGISTRY/transform-worker@sha256:... \\\n"
        "      --subnetwork regions/europe-west1/subnetworks/NAME",
    )
    d = DEFAULTS
    parser.add_argument("input", help="raw CSV: a local path or a gs:// URI")
    parser.add_argument(
        "--output-dir", required=True, help="the feature shards: a local directory or gs:// prefix"
    )
    parser.add_argument("--stats", help=f"stats.json path (default: OUTPUT_DIR/{STATS_FILE})")
    parser.add_argument(
        "--rejected", help=f"rejected rows CSV path (default: OUTPUT_DIR/{REJECTED_FILE})"
    )
    add_step_option(parser, "--coins", d, "'all', or comma-separated slugs")
    add_step_option(
        parser,
        "--split",
        d,
        "train,eval,test fractions of each coin's dates; the last day before each later split "
        "is purged",
    )
    add_step_option(
        parser,
        "--max-rejected-fraction",
        d,
        "fail when a larger share of rows is rejected",
        type=float,
    )
    add_step_option(
        parser,
        "--column-mapping",
        d,
        'JSON {canonical: source column}, e.g. \'{"date": "Date", "slug": "Name"}\'',
    )
    add_step_option(
        parser,
        "--price-tolerance",
        d,
        "relative slack for open/close outside [low, high]",
        type=float,
    )
    add_step_option(
        parser,
        "--max-daily-move",
        d,
        "reject a close more than this many times (or less than 1/this of) the previous "
        "accepted close (implausible_move; inf: no limit)",
        type=float,
    )
    add_step_option(
        parser,
        "--max-intraday-range",
        d,
        "reject a day whose high/low exceeds this (implausible_range; inf: no limit)",
        type=float,
    )
    add_step_option(
        parser,
        "--as-of",
        d,
        "the run's date, yyyy-mm-dd: later dates are rejected (future_date; default: today, UTC)",
    )
    add_step_option(
        parser,
        "--warn-usable-fraction",
        d,
        "warn when gaps leave a coin less than this share of the examples a gap-free "
        "history would give",
        type=float,
    )
    add_step_option(
        parser,
        "--min-usable-fraction",
        d,
        "fail when gaps leave a coin less than this share",
        type=float,
    )
    add_step_option(parser, "--num-shards", d, "shards per split", type=int)
    add_step_option(
        parser,
        "--runner",
        d,
        "local: in-process Beam runner; dataflow: Google Cloud Dataflow",
        choices=RUNNERS,
    )
    flow = parser.add_argument_group("Dataflow (with --runner dataflow)")
    flow.add_argument("--project")
    flow.add_argument("--region")
    flow.add_argument("--temp-location", help="gs:// URI")
    flow.add_argument("--staging-location", help="gs:// URI")
    flow.add_argument("--service-account-email")
    flow.add_argument(
        "--sdk-container-image", help="the Dataflow worker image (images.json: transform-worker)"
    )
    flow.add_argument("--max-num-workers", type=int, default=4)
    flow.add_argument("--subnetwork", help="e.g. regions/REGION/subnetworks/NAME")
    flow.add_argument(
        "--public-ips", action="store_true", help="give workers public IPs (default: private only)"
    )
    flow.add_argument("--job-name")
    flow.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="job label, repeatable"
    )
    return parser


def _dataflow_kwargs(args: argparse.Namespace) -> dict:
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep:
            raise TransformParameterError(f"--label must be KEY=VALUE, got {item!r}")
        labels[key] = value
    return {
        "project": args.project,
        "region": args.region,
        "temp_location": args.temp_location,
        "staging_location": args.staging_location,
        "service_account_email": args.service_account_email,
        "sdk_container_image": args.sdk_container_image,
        "max_num_workers": args.max_num_workers,
        "subnetwork": args.subnetwork,
        "no_use_public_ips": not args.public_ips,
        "job_name": args.job_name,
        "labels": labels,
    }


#: The schemes the transform reads and writes (Beam's file systems).
BEAM_SCHEMES = ("gs://", "file://")


def _call(args: argparse.Namespace) -> TransformResult:
    problems = [  # Beam's file systems: local and gs://
        scheme_problem("INPUT", args.input, BEAM_SCHEMES),
        scheme_problem("--output-dir", args.output_dir, BEAM_SCHEMES),
        is_local(args.output_dir) and local_dir_problem("--output-dir", args.output_dir),
    ]
    if problem := next((p for p in problems if p), ""):
        raise TransformParameterError(problem)
    return run(
        args.input,
        features_path=args.output_dir,
        stats_path=args.stats or os.path.join(args.output_dir, STATS_FILE),
        rejected_path=args.rejected or os.path.join(args.output_dir, REJECTED_FILE),
        coins=args.coins,
        split=args.split,
        max_rejected_fraction=args.max_rejected_fraction,
        column_mapping=args.column_mapping,
        runner=args.runner,
        pipeline_options=_dataflow_kwargs(args) if args.runner == "dataflow" else None,
        num_shards=args.num_shards,
        price_tolerance=args.price_tolerance,
        max_daily_move=args.max_daily_move,
        max_intraday_range=args.max_intraday_range,
        as_of=args.as_of,
        warn_usable_fraction=args.warn_usable_fraction,
        min_usable_fraction=args.min_usable_fraction,
    )


def _render(result: TransformResult, args) -> str:
    return (
        f"{result.table()}\nfeatures in {result.features_path} (stats: {result.stats_path}, "
        f"rejected: {result.rejected_path})"
    )


def main(argv: list[str] | None = None) -> int:
    return run_step(
        build_parser(), argv, _call, _render, failures=(TransformError, SchemaError, OSError)
    )


if __name__ == "__main__":
    sys.exit(main())
