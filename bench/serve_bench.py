"""Model server latency and throughput over loopback, beside the in-process SavedModel call.

    .venv/bin/python bench/serve_bench.py [--requests 400] [--seconds 8] [--concurrency 8]
                                          [--model-dir TRAIN_OUTPUT] [--no-old] [--json]

Measures, for the new server (KServe ModelServer, ``python -m components.deploy serve``)
and the old stdlib server (``components/deploy/server.py`` as of the last commit that
held it, read from git history), each in its own process on 127.0.0.1:

* single-instance ``:predict`` (one feature row) p50/p99, sequential;
* history ``:predict`` (31 raw bars; the old server's ``:forecast``) p50/p99;
* a batch of 100 feature rows p50/p99;
* requests/s with ``--concurrency`` clients (threads, one instance per request) and
  their p50/p99 (closed loop: latency there is mostly queueing, about clients / rate);

and the same SavedModel called in this process (one row, and 100 rows), so the server's
overhead is a ratio. Every phase stops at ``--requests`` requests or ``--seconds``,
whichever comes first. Clients keep their connection open where the server allows it
(the old server speaks HTTP/1.0: a connection per request). The machine's load average
is printed before and after: the figures are only comparable at a similar load.

Without ``--model-dir`` the model is a small exported MLP (one input per feature, 32-16-1,
the median plus fixed increasing offsets at the default quantile levels) of the train
step's SavedModel shape; with it, the highest version folder of a train output.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DEFAULT_CSV = (
    Path(os.environ.get("CRYPTO_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
    / "crypto-markets-bitcoin.csv"
)
NAME = "bench"
OLD_MARKER = "BaseHTTPRequestHandler"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def small_model(target: Path) -> Path:
    """A small MLP with the train step's signature, exported as ``<target>/1``: quantiles
    ``[None, levels]`` at the default levels, the median plus increasing offsets."""
    from statistics import NormalDist

    import keras

    from components.common.features import FEATURE_NAMES
    from components.common.quantiles import DEFAULT_QUANTILE_LEVELS, parse_quantile_levels
    from components.train.export import export_serving_model

    keras.utils.set_random_seed(0)
    levels = parse_quantile_levels(DEFAULT_QUANTILE_LEVELS)
    offsets = [0.03 * NormalDist().inv_cdf(level) for level in levels]
    inputs = {n: keras.Input(shape=(), name=n, dtype="float32") for n in FEATURE_NAMES}
    x = keras.ops.stack([inputs[n] for n in FEATURE_NAMES], axis=-1)
    x = keras.layers.Dense(32, activation="relu")(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    median = keras.layers.Dense(1, kernel_initializer="zeros")(x)
    quantiles = median + keras.ops.convert_to_tensor(offsets, dtype="float32")
    export_serving_model(keras.Model(inputs, quantiles), target, 1, levels)
    return target


def history(csv_path: Path, days: int) -> list[dict]:
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["date"])[-days:]
    keys = ("open", "high", "low", "close", "volume")
    return [{"date": r["date"], **{k: float(r[k]) for k in keys}} for r in rows]


def old_server_source() -> tuple[str, str]:
    """(commit, text) of the last committed stdlib server."""
    log = subprocess.run(
        ["git", "log", "--format=%H", "--", "components/deploy/server.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for commit in log:
        text = subprocess.run(
            ["git", "show", f"{commit}:components/deploy/server.py"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        ).stdout
        if OLD_MARKER in text:
            return commit, text
    raise SystemExit("no stdlib server in the git history of components/deploy/server.py")


_OLD_RUNNER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("old_server", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
server = module.make_server(sys.argv[2], sys.argv[3], "127.0.0.1", 0)
server.store.get()
print("serving at http://%s:%d" % server.server_address[:2], flush=True)
server.serve_forever()
"""


class Process:
    """A server subprocess; ``url`` once it printed its address."""

    def __init__(self, argv: list[str]):
        self.process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        deadline = time.monotonic() + 300
        for line in self.process.stdout:
            if " at http://" in line:
                url = line.split(" at ", 1)[1].split()[0]
                self.host, rest = url.removeprefix("http://").split(":", 1)
                self.port = int(rest.split("/", 1)[0])
                break
            if time.monotonic() > deadline:
                break
        else:
            raise SystemExit(f"server did not start: {' '.join(argv)}")
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Client:
    """POSTs JSON on one connection, reconnecting when the server closes it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> float:
        start = time.perf_counter()
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.connection.request(
                    "POST", path, body=body, headers={"Content-Type": "application/json"}
                )
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status} from {path}: {data[:300]!r}")
            if response.will_close:
                self.connection.close()
                self.connection = None
            return time.perf_counter() - start
        raise AssertionError("unreachable")


def sequential(client: Client, path: str, body: bytes, count: int, seconds: float) -> dict:
    for _ in range(min(20, count)):  # warm-up
        client.post(path, body)
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while len(times) < count and time.monotonic() < deadline:
        times.append(client.post(path, body))
    return summary(times)


def concurrent(
    host: str, port: int, path: str, body: bytes, clients: int, count: int, seconds: float
) -> dict:
    """``clients`` client threads, each up to ``count // clients`` requests. Threads, not
    processes: 8 client processes on 2 cores mostly measure the scheduler."""
    times: list[list[float]] = [[] for _ in range(clients)]
    per_client = max(1, count // clients)
    barrier = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def work(i: int) -> None:
        client = Client(host, port)
        client.post(path, body)
        barrier.wait()
        while len(times[i]) < per_client and time.monotonic() < deadline[0]:
            times[i].append(client.post(path, body))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    deadline.append(time.monotonic() + seconds)
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    flat = [x for ts in times for x in ts]
    return {"clients": clients, "requests_per_s": round(len(flat) / wall, 1), **summary(flat)}


def measure_server(
    proc: Process, paths: dict[str, str], bodies: dict[str, bytes], args: argparse.Namespace
) -> dict:
    client = Client(proc.host, proc.port)
    out = {
        "single": sequential(
            client, paths["predict"], bodies["single"], args.requests, args.seconds
        ),
        "history": sequential(
            client, paths["history"], bodies["history"], args.requests, args.seconds
        ),
        "batch_100": sequential(
            client, paths["predict"], bodies["batch"], max(20, args.requests // 4), args.seconds
        ),
        "concurrent": concurrent(
            proc.host,
            proc.port,
            paths["predict"],
            bodies["single"],
            args.concurrency,
            args.requests * 5,
            args.seconds,
        ),
    }
    return out


def in_process(version_dir: Path, row: dict, args: argparse.Namespace) -> dict:
    from components.deploy.serving import ServingModel

    model = ServingModel(version_dir, "1")
    out = {}
    for label, rows in (("single", [row]), ("batch_100", [row] * 100)):
        for _ in range(20):
            model.predict(rows)
        times = []
        deadline = time.monotonic() + args.seconds
        while len(times) < args.requests and time.monotonic() < deadline:
            start = time.perf_counter()
            model.predict(rows)
            times.append(time.perf_counter() - start)
        out[label] = summary(times)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per phase (default 400)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase (default 8)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model-dir", type=Path, help="a train output <dir>/<version>/")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--no-old", action="store_true", help="skip the old stdlib server")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    from components.common.features import HISTORY_DAYS, Bar, latest_features
    from components.deploy.deploy import run as deploy

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    model_dir = args.model_dir or small_model(work / "model")
    deploy(str(model_dir), model_repository=str(work / "repo"), model_name=NAME)
    version = sorted((work / "repo" / NAME).glob("[0-9]*"), key=lambda p: int(p.name))[-1]
    bars = history(args.csv, HISTORY_DAYS)
    row = latest_features(
        [
            Bar(
                date=__import__("datetime").date.fromisoformat(b["date"]),
                **{k: v for k, v in b.items() if k != "date"},
            )
            for b in bars
        ]
    )
    results: dict = {"in_process": in_process(version, row, args)}

    servers = [
        (
            "new",
            [
                sys.executable,
                "-m",
                "components.deploy",
                "serve",
                "--model-repository",
                str(work / "repo"),
                "--model-name",
                NAME,
                "--port",
                "0",
            ],
            {"predict": f"/v1/models/{NAME}:predict", "history": f"/v1/models/{NAME}:predict"},
            {
                "single": {"instances": [row]},
                "batch": {"instances": [row] * 100},
                "history": {"instances": [{"history": bars}]},
            },
        )
    ]
    if not args.no_old:
        commit, text = old_server_source()
        (work / "old_server.py").write_text(text)
        results["old_commit"] = commit[:12]
        servers.insert(
            0,
            (
                "old",
                [
                    sys.executable,
                    "-c",
                    _OLD_RUNNER,
                    str(work / "old_server.py"),
                    str(work / "repo"),
                    NAME,
                ],
                {"predict": f"/v1/models/{NAME}:predict", "history": f"/v1/models/{NAME}:forecast"},
                {
                    "single": {"instances": [row]},
                    "batch": {"instances": [row] * 100},
                    "history": {"history": bars},
                },
            ),
        )
    for label, command, paths, bodies in servers:
        proc = Process(command)
        try:
            encoded = {k: json.dumps(v).encode() for k, v in bodies.items()}
            results[label] = measure_server(proc, paths, encoded, args)
        finally:
            proc.stop()
    results["load_average"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    results["cpus"] = os.cpu_count()

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"serve bench: {os.cpu_count()} cpus, load average before {load_before[0]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}; phases bounded by {args.requests} requests or "
        f"{args.seconds:g} s"
    )
    ip = results["in_process"]
    print(
        f"  in-process SavedModel call: 1 row p50 {ip['single']['p50_ms']} ms "
        f"p99 {ip['single']['p99_ms']} ms; 100 rows p50 {ip['batch_100']['p50_ms']} ms"
    )
    for label in ("old", "new"):
        if label not in results:
            continue
        r = results[label]
        c = r["concurrent"]
        ratio = r["single"]["p50_ms"] / ip["single"]["p50_ms"]
        print(
            f"  {label:3} server: single p50 {r['single']['p50_ms']} / p99 "
            f"{r['single']['p99_ms']} ms ({ratio:.1f}x in-process); history p50 "
            f"{r['history']['p50_ms']} / p99 {r['history']['p99_ms']} ms; batch of 100 "
            f"p50 {r['batch_100']['p50_ms']} / p99 {r['batch_100']['p99_ms']} ms; "
            f"{c['clients']} clients: {c['requests_per_s']} req/s, p50 {c['p50_ms']} / p99 "
            f"{c['p99_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
