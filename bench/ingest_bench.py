"""Peak memory of ingest as the file grows: it streams, so peak RSS should stay flat.

Builds files of the given sizes (default 200 MB and 2 GB) in a temporary folder by
repeating the data rows of the shared file after its header, ingests each into a fresh
local lake in its own process (so peak RSS is that run's), prints size, seconds, MB/s and
peak RSS, and deletes everything afterwards. For reference it also reports the peak RSS
of the child process doing nothing but importing ingest.

    python bench/ingest_bench.py                   # 200 MB and 2 GB
    python bench/ingest_bench.py --sizes-mb 50,500

The data folder comes from CRYPTO_DATA_DIR (default: ../shared/data next to the project).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys
from components.ingest import run
if sys.argv[1] != "-":
    result = run(sys.argv[1], sys.argv[2])
    print(result.rows, result.bytes)
"""


def data_dir() -> Path:
    default = PROJECT_ROOT.parent / "shared" / "data"
    return Path(os.environ.get("CRYPTO_DATA_DIR", default))


def build(path: Path, source: Path, size: int) -> int:
    """Write ``size`` bytes or a little more: the header, then the data rows repeated."""
    header, _, body = source.read_bytes().partition(b"\n")
    body = body if body.endswith(b"\n") else body + b"\n"
    block = body * max(1, (8 << 20) // len(body))  # about 8 MB per write
    written = 0
    with open(path, "wb") as out:
        out.write(header + b"\n")
        while written < size:
            out.write(block)
            written += len(block)
    return path.stat().st_size


def measure(source: str, lake: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, child output) of one ingest in a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, source, lake],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"ingest of {source} failed:\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out.strip()  # ru_maxrss: KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="200,2000", help="default: %(default)s")
    args = parser.parse_args(argv)
    source = data_dir() / "crypto-markets.csv"
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    _, baseline, _ = measure("-", "-")
    print(f"{'file':>10} {'rows':>11} {'seconds':>8} {'MB/s':>7} {'peak RSS':>9}")
    print(f"{'(import)':>10} {'':>11} {'':>8} {'':>7} {baseline:>6.0f} MB")
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        for mb in sizes:
            path = Path(tmp) / f"crypto-{mb}mb.csv"
            size = build(path, source, mb * 1_000_000)
            seconds, peak, out = measure(str(path), str(Path(tmp) / f"lake-{mb}"))
            rows = int(out.split()[0])
            print(
                f"{size / 1e6:>7.0f} MB {rows:>11,} {seconds:>8.1f} {size / 1e6 / seconds:>7.1f} "
                f"{peak:>6.0f} MB",
                flush=True,
            )
            path.unlink()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
