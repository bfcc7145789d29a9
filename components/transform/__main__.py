"""CLI of the transform step: ``python -m components.transform INPUT --output-dir DIR``."""

from __future__ import annotations

import argparse
import logging
import sys

from components.common.cli import add_quiet_argument, configure_logging
from components.common.schema import SchemaError
from components.transform.transform import RUNNERS, TransformError, run_transform


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.transform",
        description="Parse, validate, feature-engineer and time-split a raw OHLCV CSV with "
                    "Apache Beam. Writes train/eval/test CSV shards, rejected.csv and "
                    "stats.json into --output-dir.",
    )
    parser.add_argument("input", help="raw CSV: a local path or a gs:// URI")
    parser.add_argument("--output-dir", required=True, help="local directory or gs:// prefix")
    parser.add_argument("--coins", default="bitcoin",
                        help="'all', or comma-separated slugs (default: bitcoin)")
    parser.add_argument("--split", default="0.7,0.15,0.15",
                        help="train,eval,test fractions of each coin's dates; the last day before "
                             "each later split is purged (default: 0.7,0.15,0.15)")
    parser.add_argument("--max-rejected-fraction", type=float, default=0.05,
                        help="fail when a larger share of rows is rejected (default: 0.05)")
    parser.add_argument("--column-mapping", default=None,
                        help='JSON {canonical: source column}, e.g. \'{"date": "Date", "slug": "Name"}\'')
    parser.add_argument("--price-tolerance", type=float, default=0.01,
                        help="relative slack for open/close outside [low, high] (default: 0.01)")
    parser.add_argument("--num-shards", type=int, default=1, help="shards per split (default: 1)")
    parser.add_argument("--runner", choices=RUNNERS, default="local",
                        help="local: in-process Beam runner (default); dataflow: Google Cloud Dataflow")
    add_quiet_argument(parser)

    flow = parser.add_argument_group("Dataflow (with --runner dataflow)")
    flow.add_argument("--project")
    flow.add_argument("--region")
    flow.add_argument("--temp-location", help="gs:// URI")
    flow.add_argument("--staging-location", help="gs:// URI")
    flow.add_argument("--service-account-email")
    flow.add_argument("--sdk-container-image", help="default: the transform step's image")
    flow.add_argument("--max-num-workers", type=int, default=4)
    flow.add_argument("--subnetwork", help="e.g. regions/REGION/subnetworks/NAME")
    flow.add_argument("--public-ips", action="store_true",
                      help="give workers public IPs (default: private IPs only)")
    flow.add_argument("--job-name")
    flow.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                      help="job label, repeatable")
    return parser


def _dataflow_kwargs(args: argparse.Namespace) -> dict:
    from components.images import image_for

    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep:
            raise TransformError(f"--label must be KEY=VALUE, got {item!r}")
        labels[key] = value
    return {
        "project": args.project, "region": args.region,
        "temp_location": args.temp_location, "staging_location": args.staging_location,
        "service_account_email": args.service_account_email,
        "sdk_container_image": args.sdk_container_image or image_for("transform"),
        "max_num_workers": args.max_num_workers, "subnetwork": args.subnetwork,
        "no_use_public_ips": not args.public_ips, "job_name": args.job_name, "labels": labels,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    try:
        options = _dataflow_kwargs(args) if args.runner == "dataflow" else None
        summary = run_transform(
            args.input, args.output_dir, coins=args.coins, split=args.split,
            max_rejected_fraction=args.max_rejected_fraction, column_mapping=args.column_mapping,
            runner=args.runner, pipeline_options=options, num_shards=args.num_shards,
            price_tolerance=args.price_tolerance,
        )
    except (TransformError, SchemaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.table())
    print(f"outputs in {summary.output_dir} (stats: {summary.stats_path}, "
          f"rejected: {summary.rejected_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
