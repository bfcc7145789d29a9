"""CLI: ``python -m components.ingest --lake <dir or gs://bucket/prefix> [--source ...]``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from components.common.schema import SchemaError
from components.common.uris import FetchError
from components.ingest.ingest import DEFAULT_SHA256, DEFAULT_SOURCE, IngestError, ingest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.ingest",
        description=(
            "Fetch the raw crypto-markets CSV, validate it (non-empty, CSV, required "
            "columns, optional SHA-256) and store it in the data lake under a "
            "content-addressed name (<lake>/raw/sha256=<hex>/<file name>). A re-run with "
            "the same bytes stores nothing new; nothing is ever overwritten."
        ),
        epilog=(
            f"default source (checked against SHA-256 {DEFAULT_SHA256}):\n"
            f"  {DEFAULT_SOURCE}\n\n"
            "examples:\n"
            "  python -m components.ingest --lake .local/lake\n"
            "  python -m components.ingest --source ../shared/data/crypto-markets.csv "
            "--lake /tmp/lake\n"
            "  python -m components.ingest --source gs://my-bucket/in/prices.csv "
            "--lake gs://my-lake/crypto \\\n"
            "      --column-mapping '{\"date\": \"Date\", \"slug\": \"Name\"}'\n\n"
            "exit status: 0 stored or already stored, 1 input rejected or unreadable, 2 usage"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="https URL, gs:// URI or local path of the CSV (default: the pinned GitHub "
        "copy named below)",
    )
    parser.add_argument(
        "--lake",
        required=True,
        help="data lake: a local directory or gs://bucket/prefix",
    )
    parser.add_argument(
        "--sha256",
        default=None,
        metavar="HEX",
        help="expected SHA-256 of the source bytes; the input is rejected on mismatch "
        "(default: the pinned hash when --source is the default URL, else none)",
    )
    parser.add_argument(
        "--column-mapping",
        default=None,
        metavar="JSON",
        help='JSON object {canonical: your column}, for a file whose columns are named '
        'differently, e.g. \'{"date": "Date", "slug": "Name", "symbol": "Symbol"}\'',
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="PATH",
        help="also write a byte-for-byte copy of the validated CSV here",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = ingest(
            args.source,
            args.lake,
            expected_sha256=args.sha256,
            column_mapping=args.column_mapping,
            output_path=args.output,
        )
    except (IngestError, SchemaError, FetchError, OSError) as exc:
        print(f"ingest: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    verdict = "stored new object" if result.stored_new else "already in the lake, stored nothing new"
    print(f"{verdict}: {result.lake_uri}")
    print(f"  sha256  {result.sha256}")
    print(f"  bytes   {result.bytes:,}")
    print(f"  rows    {result.rows:,}")
    print(f"  source  {result.source}")
    if args.output:
        print(f"  copy    {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
