"""CLI of the ingest step: ``python -m components.ingest --lake DIR_OR_GS [--source ...]``."""

from __future__ import annotations

import sys

from components.common.cli import add_step_option, defaults_of, run_step, step_parser
from components.common.results import ParameterError
from components.common.schema import SchemaError
from components.common.uris import FetchError, local_file_problem
from components.ingest.ingest import DEFAULT_SHA256, IngestError, IngestResult, run

DEFAULTS = defaults_of(run)


def build_parser():
    parser = step_parser(
        "python -m components.ingest",
        "Fetch the raw crypto-markets CSV, validate it (non-empty, CSV, required columns, "
        "optional SHA-256) and store it in the data lake under a content-addressed name "
        "(<lake>/raw/sha256=<hex>/<file name>). A re-run with the same bytes stores nothing "
        "new; nothing is ever overwritten.",
        "  python -m components.ingest --lake .local/lake\n"
        "  python -m components.ingest --source ../shared/data/crypto-markets.csv \\\n"
        "      --lake /tmp/lake\n"
        "  python -m components.ingest --source gs://my-bucket/in/prices.csv \\\n"
        '      --lake gs://my-lake/crypto --column-mapping \'{"date": "Date", "slug": "Name"}\'\n\n'
        f"default source (checked against SHA-256 {DEFAULT_SHA256}):\n  {DEFAULTS['source']}",
    )
    parser.add_argument(
        "--source",
        default=DEFAULTS["source"],
        help="https URL, gs:// URI or local path of the CSV (default: the pinned GitHub copy)",
    )
    parser.add_argument(
        "--lake", required=True, help="data lake: a local directory or gs://bucket/prefix"
    )
    parser.add_argument(
        "--sha256",
        default=DEFAULTS["expected_sha256"],
        metavar="HEX",
        help="expected SHA-256 of the source bytes; the input is rejected on mismatch "
        "(default: the pinned hash when --source is the default URL, else none)",
    )
    parser.add_argument(
        "--column-mapping",
        default=DEFAULTS["column_mapping"],
        metavar="JSON",
        help="JSON object {canonical: your column}, for a file whose columns are named "
        'differently, e.g. \'{"date": "Date", "slug": "Name", "symbol": "Symbol"}\'',
    )
    add_step_option(
        parser,
        "--deadline-s",
        DEFAULTS,
        "give up a download that takes longer than this many seconds",
        type=float,
    )
    add_step_option(
        parser,
        "--min-bytes-per-s",
        DEFAULTS,
        "give up a download slower than this on average (after its first 30 s)",
        type=float,
    )
    parser.add_argument(
        "--output",
        default=DEFAULTS["raw_path"],
        metavar="PATH",
        help="also write a byte-for-byte copy of the validated CSV here",
    )
    return parser


def _render(result: IngestResult, args) -> str:
    verdict = (
        "stored new object" if result.stored_new else "already in the lake, stored nothing new"
    )
    lines = [
        f"{verdict}: {result.lake_uri}",
        f"  sha256  {result.sha256}",
        f"  bytes   {result.bytes:,}",
        f"  rows    {result.rows:,}",
        f"  source  {result.source}",
    ]
    if args.output:
        lines.append(f"  copy    {args.output}")
    return "\n".join(lines)


def _call(args) -> IngestResult:
    # Checked here to name the option; run checks raw_path too, before the lake is written.
    if args.output and (problem := local_file_problem("--output", args.output)):
        raise ParameterError(problem)
    return run(
        args.source,
        args.lake,
        raw_path=args.output,
        expected_sha256=args.sha256,
        column_mapping=args.column_mapping,
        deadline_s=args.deadline_s,
        min_bytes_per_s=args.min_bytes_per_s,
    )


def main(argv: list[str] | None = None) -> int:
    return run_step(
        build_parser(),
        argv,
        _call,
        _render,
        failures=(IngestError, SchemaError, FetchError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())
