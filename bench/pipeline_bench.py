"""Orchestration overhead of kfp.local: the local KFP run's wall time divided by the wall
time of calling the five step functions directly in one process, on the same data with
the same (small) budgets.

    .venv/bin/python bench/pipeline_bench.py [--source CSV] [--n-trials 3] ...

The overhead is a subprocess and a fresh interpreter per step (imports of TensorFlow,
Beam, kfp), plus compiling the pipeline and kfp.local's artifact bookkeeping.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
DEFAULT_DATA = Path(os.environ.get("CRYPTO_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))


def run_direct(source: str, work: Path, budget: dict) -> dict[str, float]:
    """The five step functions called in this process; returns seconds per step."""
    from components import deploy, ingest, train, transform, tune

    times = {}
    t = time.perf_counter()
    ingest.run(source, str(work / "lake"), raw_path=str(work / "raw.csv"))
    times["ingest"] = time.perf_counter() - t
    t = time.perf_counter()
    features = work / "features"
    transform.run(
        str(work / "raw.csv"),
        features_path=str(features),
        stats_path=str(features / "stats.json"),
        rejected_path=str(work / "rejected.csv"),
        coins="bitcoin",
    )
    times["transform"] = time.perf_counter() - t
    t = time.perf_counter()
    tuned = tune.run(
        work / "features",
        work / "features" / "stats.json",
        n_trials=budget["n_trials"],
        timeout_s=budget["tune_timeout_s"],
        max_epochs=budget["tune_max_epochs"],
        seed=42,
    )
    times["tune"] = time.perf_counter() - t
    t = time.perf_counter()
    result = train.run(
        work / "features",
        work / "features" / "stats.json",
        tuned.best_params,
        model_path=work / "model",
        epochs=budget["epochs"],
        seed=42,
        max_mae_ratio=1e6,
        model_name="bench",
        report_path=work / "report.html",
    )
    times["train"] = time.perf_counter() - t
    t = time.perf_counter()
    deploy.run(
        str(work / "model"),
        model_repository=str(work / "models"),
        model_name="bench",
        metrics=result.metrics(),
        version=result.version,
    )
    times["deploy"] = time.perf_counter() - t
    return times


def run_kfp_local(source: str, work: Path, budget: dict) -> dict[str, float]:
    """The compiled pipeline through kfp.local; returns seconds per step and the total."""
    import contextlib
    import io

    from pipeline.crypto_pipeline import compile_pipeline
    from pipeline.local import run_compiled_locally

    start = time.perf_counter()
    pipeline_yaml = compile_pipeline(work / "pipeline.yaml")
    arguments = {
        "lake": str(work / "lake"),
        "model_repository": str(work / "models"),
        "source": source,
        "source_sha256": "",
        "max_mae_ratio": 1e6,
        **budget,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_compiled_locally(
            pipeline_yaml, arguments, work / "root", progress=lambda _msg: None
        )
    total = time.perf_counter() - start
    if not result.succeeded:
        raise SystemExit(f"kfp.local run failed at {result.failed_step.step}")
    times = {step: record.seconds for step, record in result.steps.items()}
    times["total"] = total
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=str(DEFAULT_DATA / "crypto-markets.csv"))
    parser.add_argument("--n-trials", type=int, default=3)
    parser.add_argument("--tune-max-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    budget = {
        "n_trials": args.n_trials,
        "tune_max_epochs": args.tune_max_epochs,
        "tune_timeout_s": 600,
        "epochs": args.epochs,
    }
    source = str(Path(args.source).resolve())
    print(f"source {source}; budget {budget}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "direct").mkdir()
        (work / "kfp").mkdir()
        start = time.perf_counter()
        direct = run_direct(source, work / "direct", budget)
        direct_total = time.perf_counter() - start  # includes first imports
        kfp = run_kfp_local(source, work / "kfp", budget)
    print(f"\n{'step':<10} {'direct s':>10} {'kfp.local s':>12} {'ratio':>7}")
    for step in ("ingest", "transform", "tune", "train", "deploy"):
        print(
            f"{step:<10} {direct[step]:>10.1f} {kfp[step]:>12.1f} {kfp[step] / direct[step]:>7.2f}"
        )
    print(
        f"{'total':<10} {direct_total:>10.1f} {kfp['total']:>12.1f} "
        f"{kfp['total'] / direct_total:>7.2f}"
    )
    print(
        "\norchestration overhead (kfp.local wall / direct wall): "
        f"{kfp['total'] / direct_total:.2f}x"
    )


if __name__ == "__main__":
    main()
