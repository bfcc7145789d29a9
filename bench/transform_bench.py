"""Throughput of the transform (``coins=all``, local runner) as the input grows.

Runs the transform on the shared full file and on copies made N times larger by
replicating every coin under a new slug (``bitcoin-r1``, ``bitcoin-r2``, ...), each run in
its own process so peak RSS is per run. Beside each, in the same way, a pandas reference:
parse, sort, de-duplicate, group by coin (and run of consecutive days), the features and
the target with the same definitions, no Beam, no outputs written. Prints rows, seconds,
rows/s and peak RSS of both, their ratio, the load average around each run, and the
issue's targets (>= 30,000 rows/s at 1x, >= 60,000 at 10x, 10x input in at most 10x the
time of 1x, peak RSS at 10x at most 2x that of 1x).

    python bench/transform_bench.py                  # sizes 1x, 10x and 30x
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
    if runner == "pandas":
        import pandas  # noqa: F401  (imports are outside the timing, as for Beam)

        started = time.monotonic()
        rows, examples = pandas_reference(input_path)
        print(
            json.dumps({"rows": rows, "seconds": time.monotonic() - started, "examples": examples})
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
    parts_dir = t.parts_dir_for(output_dir)
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
        parts_dir=parts_dir,
    )
    pipeline.run().wait_until_finish()
    t.remove_parts(parts_dir)
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


def pandas_reference(input_path: str) -> tuple[int, int]:
    """The features and target of every coin with pandas; returns (input rows, examples
    with a known target).

    The definitions of components.common.features: log returns, lags 1..7, mean and
    population std over 7 and 30 returns, log(high/low), log1p volume change, day of week;
    31 consecutive days of history, a calendar gap restarts it; target the next day's
    log return.
    """
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(input_path, float_precision="round_trip", skip_blank_lines=True)
    rows = len(frame)
    frame["slug"] = frame["slug"].str.strip().str.lower()
    date = pd.to_datetime(frame["date"], format="%d/%m/%Y", errors="coerce")
    iso = date.isna()
    if iso.any():
        date[iso] = pd.to_datetime(frame.loc[iso, "date"], format="%Y-%m-%d")
    frame["day"] = date
    frame = frame.sort_values(["slug", "day"], kind="stable")
    frame = frame.drop_duplicates(["slug", "day"], keep="first").reset_index(drop=True)
    step = frame.groupby("slug", sort=False)["day"].diff().dt.days
    run = (step != 1).cumsum()  # a new run at each coin's first day and after each gap
    runs = frame.groupby(run, sort=False)
    ret = np.log(frame["close"] / runs["close"].shift(1))
    features = pd.DataFrame({"ret": ret, "run": run})
    by_run = features.groupby("run", sort=False)["ret"]
    out = {f"ret_lag_{k}": by_run.shift(k - 1) for k in range(1, 8)}
    for window in (7, 30):
        rolling = by_run.rolling(window)
        out[f"ret_mean_{window}"] = rolling.mean().reset_index(level=0, drop=True)
        out[f"ret_std_{window}"] = rolling.std(ddof=0).reset_index(level=0, drop=True)
    out["log_hl_range"] = np.log(frame["high"] / frame["low"])
    out["log_volume_change"] = np.log1p(frame["volume"]) - runs["volume"].shift(1).pipe(np.log1p)
    weekday = frame["day"].dt.weekday
    out["dow_sin"] = np.sin(2 * np.pi * weekday / 7)
    out["dow_cos"] = np.cos(2 * np.pi * weekday / 7)
    out["target"] = by_run.shift(-1)
    result = pd.DataFrame(out)
    position = frame.groupby(run, sort=False).cumcount()
    examples = result[(position >= 30) & result["target"].notna()]
    return rows, len(examples)


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
    parser.add_argument(
        "--sizes", default="1,10,30", help="multiples of the input (default 1,10,30)"
    )
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
    print(f"load average (1 min) before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"{'input':>6} {'runner':<14} {'rows':>9} {'examples':>9} {'seconds':>8} "
        f"{'rows/s':>8} {'wall s':>7} {'peak RSS MB':>11} {'vs pandas':>9} {'load':>5}"
    )
    results: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="transform-bench-") as tmp:
        runs = [(size, runner) for size in sizes for runner in ("local", "pandas")]
        if args.compare_runners:
            runs.append((1, "bundle-direct"))
        for size, runner in runs:
            source = args.input
            if size != 1:
                source = Path(tmp) / f"crypto-markets-x{size}.csv"
                if not source.exists():
                    replicate(args.input, source, size)
            result = measure(source, Path(tmp) / f"out-{size}-{runner}", runner)
            results[size, runner] = result
            ratio = ""
            if runner == "local":
                ratio = "—"
            elif runner == "pandas" and (size, "local") in results:
                ratio = f"{results[size, 'local']['seconds'] / result['seconds']:.1f}x"
            print(
                f"{f'{size}x':>6} {runner if runner != 'local' else 'beam fnapi':<14} "
                f"{result['rows']:>9,} {result['examples']:>9,} {result['seconds']:>8.2f} "
                f"{result['rows'] / result['seconds']:>8,.0f} {result['wall']:>7.1f} "
                f"{result['peak_rss_mb']:>11.0f} {ratio:>9} {os.getloadavg()[0]:>5.2f}",
                flush=True,
            )
    print(
        "seconds: run_transform (pipeline build + run + stats; pandas: read to features); "
        "wall: the whole process, imports included; vs pandas: beam seconds / pandas "
        "seconds; load: 1-minute load average after the run; examples: beam's are after "
        "the purge of each split boundary (two rows per coin), pandas' before."
    )
    _print_targets(results)


def _print_targets(results: dict[tuple[int, str], dict]) -> None:
    beam = {size: r for (size, runner), r in results.items() if runner == "local"}

    def line(name: str, ok: bool, detail: str) -> None:
        print(f"  {'ok  ' if ok else 'MISS'} {name}: {detail}")

    print("targets:")
    if 1 in beam:
        rate = beam[1]["rows"] / beam[1]["seconds"]
        line("1x >= 30,000 rows/s", rate >= 30_000, f"{rate:,.0f} rows/s")
    if 10 in beam:
        rate = beam[10]["rows"] / beam[10]["seconds"]
        line("10x >= 60,000 rows/s", rate >= 60_000, f"{rate:,.0f} rows/s")
    if 1 in beam and 10 in beam:
        times = beam[10]["seconds"] / beam[1]["seconds"]
        line("10x time <= 10 x 1x time", times <= 10, f"{times:.1f}x the time")
        rss = beam[10]["peak_rss_mb"] / beam[1]["peak_rss_mb"]
        line("10x peak RSS <= 2 x 1x", rss <= 2, f"{rss:.2f}x the peak RSS")


if __name__ == "__main__":
    main()
