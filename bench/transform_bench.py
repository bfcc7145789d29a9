"""Throughput of the transform (``coins=all``, local runner) as the input grows.

Runs the transform on the shared full file and on copies made N times larger by
replicating every coin under a new slug (``bitcoin-r1``, ``bitcoin-r2``, ...), each run in
its own process so peak RSS is per run. Prints rows, seconds, rows/s and peak RSS.

    python bench/transform_bench.py                  # sizes 1x and 10x
    python bench/transform_bench.py --sizes 1,3,10
    python bench/transform_bench.py --compare-runners  # also time Beam's BundleBasedDirectRunner

The data folder comes from CRYPTO_DATA_DIR (default: ../shared/data next to the project).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "crypto-markets.csv"


def replicate(source: Path, target: Path, times: int) -> int:
    """Write ``source`` with its data rows repeated ``times`` times under new slugs;
    return the rows written."""
    header, *rows = source.read_text().splitlines()
    rows = [r for r in rows if r.strip()]
    with target.open("w") as out:
        out.write(header + "\n")
        for copy in range(times):
            suffix = f"-r{copy}" if copy else ""
            for row in rows:
                slug, rest = row.split(",", 1)
                out.write(f"{slug}{suffix},{rest}\n")
    return len(rows) * times


def child(input_path: str, output_dir: str, runner: str) -> None:
    """One measured run; prints a JSON line."""
    import logging

    logging.disable(logging.INFO)
    if runner == "local":
        from components import transform

        summary = transform.run(
            input_path,
            features_path=output_dir,
            stats_path=os.path.join(output_dir, "stats.json"),
            rejected_path=os.path.join(output_dir, "rejected.csv"),
            coins="all",
        )
        print(
            json.dumps(
                {
                    "rows": summary.input_rows,
                    "seconds": summary.seconds,
                    "examples": sum(s["rows"] for s in summary.splits.values()),
                }
            )
        )
        return
    # Only for the runner comparison: the same pipeline on BundleBasedDirectRunner.
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

    from components.transform import transform as t
    from components.transform.parse import RowParser

    started = time.monotonic()
    pipeline = beam.Pipeline(runner=BundleBasedDirectRunner(), options=PipelineOptions(flags=[]))
    os.makedirs(output_dir, exist_ok=True)
    stats_path = os.path.join(output_dir, "stats.json")
    t.build_pipeline(
        pipeline,
        input_path,
        features_path=output_dir,
        stats_path=stats_path,
        rejected_path=os.path.join(output_dir, "rejected.csv"),
        parser=RowParser.from_header(t.read_header(input_path)),
        wanted=None,
        fractions=(0.7, 0.15, 0.15),
        num_shards=1,
    )
    pipeline.run().wait_until_finish()
    stats = json.loads(Path(stats_path).read_text())
    print(
        json.dumps(
            {
                "rows": stats["input_rows"],
                "seconds": time.monotonic() - started,
                "examples": sum(s["rows"] for s in stats["splits"].values()),
            }
        )
    )


def measure(input_path: Path, output_dir: Path, runner: str = "local") -> dict:
    """Run ``child`` in a fresh interpreter; add wall time and that process's peak RSS."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(input_path), str(output_dir), runner],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark run on {input_path} failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.monotonic() - started
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        type=Path,
        default=Path(os.environ["CRYPTO_DATA_DIR"]) / "crypto-markets.csv"
        if "CRYPTO_DATA_DIR" in os.environ
        else DEFAULT_DATA,
    )
    parser.add_argument("--sizes", default="1,10", help="multiples of the input (default 1,10)")
    parser.add_argument(
        "--compare-runners",
        action="store_true",
        help="also time BundleBasedDirectRunner on the 1x input",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"transform benchmark: coins=all, local runner (FnApiRunner), input {args.input.name}")
    print(
        f"{'input':>6} {'runner':<14} {'rows':>9} {'examples':>9} {'seconds':>8} "
        f"{'rows/s':>8} {'wall s':>7} {'peak RSS MB':>11}"
    )
    with tempfile.TemporaryDirectory(prefix="transform-bench-") as tmp:
        runs = [(size, "local") for size in sizes]
        if args.compare_runners:
            runs.append((1, "bundle-direct"))
        for size, runner in runs:
            source = args.input
            if size != 1:
                source = Path(tmp) / f"crypto-markets-x{size}.csv"
                if not source.exists():
                    replicate(args.input, source, size)
            result = measure(source, Path(tmp) / f"out-{size}-{runner}", runner)
            print(
                f"{f'{size}x':>6} {runner if runner != 'local' else 'fnapi':<14} "
                f"{result['rows']:>9,} {result['examples']:>9,} {result['seconds']:>8.1f} "
                f"{result['rows'] / result['seconds']:>8,.0f} {result['wall']:>7.1f} "
                f"{result['peak_rss_mb']:>11.0f}",
                flush=True,
            )
    print(
        "seconds: run_transform (pipeline build + run + stats); wall: the whole process, "
        "imports included."
    )


if __name__ == "__main__":
    main()
