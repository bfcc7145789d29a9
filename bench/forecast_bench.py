"""Does the quantile forecast have skill on your market? Transform, tune (a small budget)
and train on any CSV, then the score table of the model beside historical quantiles and
GARCH(1,1)-t on the same test window, and the gate's verdict.

    python -m bench.forecast_bench --source FILE [--column-mapping JSON] [--coins ...]
    make forecast-bench SOURCE=FILE [COINS="ethereum litecoin"] [COLUMN_MAPPING='{...}']

The steps are the pipeline's own functions (``components.transform.run``,
``components.tune.run``, ``components.train.run``) called in this process, into a
temporary folder (or ``--out DIR``, which keeps the report, the model and the features).
Nothing is deployed: no model repository, no champion; the verdict is the pinball gate's
against the baselines alone.

Columns of the table: the mean pinball loss over the test days and the quantile levels
(log-return units, lower is better); ``ratio``, the model's mean pinball loss over the
baseline's; ``DM p``, the one-sided Diebold-Mariano p-value on the per-day pinball losses
(H1: the model's are smaller); coverage and mean width (log return, about the relative
price width) of the central 50% and 90% intervals.

Exit status: 0 the bench ran (whatever the verdict), 1 a step failed (bad data, a coin
with too little history), 2 unusable arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The tune budget: small, so that the bench runs in minutes on a laptop.
TUNE_BUDGET = {"n_trials": 8, "max_epochs": 40, "timeout_s": 600.0, "parallel_trials": 2}
#: The issue's goals on other markets: never worse than the historical quantiles by more
#: than 1% pinball; 90% coverage within 0.85..0.95.
MAX_RATIO_OTHER_MARKETS = 1.01
COVERAGE_RANGE = (0.85, 0.95)

ROWS = (("model", "model"), ("historical", "historical quantiles"), ("garch", "GARCH(1,1)-t"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.forecast_bench",
        description=__doc__.split("\n\n")[0],
        epilog="examples:\n"
        "  python -m bench.forecast_bench --source prices.csv --coins ethereum litecoin\n"
        "  python -m bench.forecast_bench --source mine.csv --coins all \\\n"
        '      --column-mapping \'{"slug": "Ticker", "date": "Day"}\' --out bench-out\n\n'
        "exit status: 0 the bench ran, 1 a step failed, 2 unusable arguments",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", required=True, help="CSV file (a local path)")
    p.add_argument(
        "--column-mapping",
        default=None,
        help='JSON {canonical: your column}, e.g. \'{"date": "Date", "slug": "Name"}\'',
    )
    p.add_argument(
        "--coins",
        nargs="+",
        default=["all"],
        help="coin slugs (space or comma separated) or 'all' (default: all)",
    )
    p.add_argument("--split", default=None, help="train,eval,test fractions (transform's)")
    p.add_argument("--quantile-levels", default=None, help="levels (train's default if unset)")
    p.add_argument("--trials", type=int, default=TUNE_BUDGET["n_trials"], help="tune trials")
    p.add_argument(
        "--max-epochs", type=int, default=TUNE_BUDGET["max_epochs"], help="epochs per trial"
    )
    p.add_argument(
        "--tune-timeout", type=float, default=TUNE_BUDGET["timeout_s"], help="tune seconds"
    )
    p.add_argument("--epochs", type=int, default=None, help="train epochs (train's default)")
    p.add_argument(
        "--ensemble-size", type=int, default=None, help="nets averaged (train's default)"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None, help="keep the outputs in this folder")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="the steps' progress logs")
    return p


def accepted(func, **kwargs: Any) -> dict[str, Any]:
    """``kwargs`` without the None values and the names ``func`` does not take (a step
    that has not gained a parameter yet runs with its own defaults)."""
    names = inspect.signature(func).parameters
    return {k: v for k, v in kwargs.items() if v is not None and k in names}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The three steps into ``work``; the figures for the table."""
    from components import train, transform, tune
    from components.common.quantiles import quantile_summary

    coins = ",".join(c for part in args.coins for c in part.split(",") if c.strip())
    source = str(Path(args.source))
    features, stats = work / "features", work / "stats.json"
    seconds = {}

    started = time.monotonic()
    transformed = transform.run(
        source,
        features_path=str(features),
        stats_path=str(stats),
        rejected_path=str(work / "rejected.csv"),
        **accepted(
            transform.run, coins=coins, split=args.split, column_mapping=args.column_mapping
        ),
    )
    seconds["transform"] = time.monotonic() - started
    progress(
        f"transform: {transformed.accepted_rows} rows accepted, {transformed.rejected_rows} "
        f"rejected; coins {', '.join(sorted(transformed.coins))} "
        f"({seconds['transform']:.0f} s)"
    )

    started = time.monotonic()
    tuned = tune.run(
        features,
        stats,
        best_params_path=work / "best_params.json",
        **accepted(
            tune.run,
            n_trials=args.trials,
            max_epochs=args.max_epochs,
            timeout_s=args.tune_timeout,
            parallel_trials=TUNE_BUDGET["parallel_trials"],
            seed=args.seed,
            quantile_levels=args.quantile_levels,
        ),
    )
    seconds["tune"] = time.monotonic() - started
    progress(f"tune: {tuned.trials_run} trials ({seconds['tune']:.0f} s)")

    started = time.monotonic()
    trained = train.run(
        features,
        stats,
        work / "best_params.json",
        model_path=work / "model",
        report_path=work / "report.html",
        **accepted(
            train.run,
            epochs=args.epochs,
            ensemble_size=args.ensemble_size,
            seed=args.seed,
            quantile_levels=args.quantile_levels,
            data_sha256=hashlib.sha256(Path(source).read_bytes()).hexdigest(),
        ),
    )
    seconds["train"] = time.monotonic() - started
    progress(f"train: done ({seconds['train']:.0f} s)")

    m = trained.metrics()
    test = transformed.splits.get("test", {})
    figures: dict[str, Any] = {
        "source": source,
        "coins": sorted(transformed.coins),
        "test": {
            "start": test.get("start"),
            "end": test.get("end"),
            "rows": int(m.get("test_rows", test.get("rows", 0))),
        },
        "rows": {},
        "garch_note": trained.garch_unavailable,
        "gate": {
            "deploy": bool(trained.passed_gate),
            "outcome": trained.gate_outcome,
            "reason": trained.gate_reason,
        },
        "mae_ratio": float(m["mae_ratio"]),
        "quantile_levels": list(getattr(trained, "quantile_levels", ())),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "report": str(work / "report.html"),
    }
    for who, label in ROWS:
        if f"{who}_pinball" not in m:
            continue
        figures["rows"][who] = {
            "label": label,
            "pinball": m[f"{who}_pinball"],
            "ratio": None if who == "model" else m.get(ratio_key(who)),
            "dm_p": None if who == "model" else m.get(f"dm_{who}_p_value"),
            **{
                f"{k}_{p}": m.get(f"{who}_{k}_{p}")
                for k in ("coverage", "width")
                for p in ("50", "90")
            },
        }
    figures["summary"] = quantile_summary(m)
    return figures


def ratio_key(who: str) -> str:
    return "pinball_ratio" if who == "historical" else f"{who}_pinball_ratio"


def _fmt(value: float | None, spec: str) -> str:
    """``value`` as ``spec`` (e.g. ``"8.4f"``), or a dash as wide."""
    if value is None or value != value:
        return "-".rjust(int(spec.split(".")[0]))
    return format(value, spec)


def table(figures: dict[str, Any]) -> str:
    """The score table, the gate's verdict and the goals, for people."""
    test = figures["test"]
    lines = [
        f"Forecast bench: {figures['source']}",
        f"coins: {', '.join(figures['coins'])}; test split {test['start']} .. {test['end']} "
        f"({test['rows']} rows); levels {','.join(map(repr, figures['quantile_levels']))}",
        "",
        f"{'':22}{'pinball':>10}{'ratio':>8}{'DM p':>7}{'cov 50%':>9}{'width 50%':>11}"
        f"{'cov 90%':>9}{'width 90%':>11}",
    ]
    for who, label in ROWS:
        row = figures["rows"].get(who)
        if row is None:
            note = figures["garch_note"] or "no forecast"
            lines.append(f"{label:22}unavailable: {note}")
            continue
        lines.append(
            f"{label:22}{_fmt(row['pinball'], '10.6f')}{_fmt(row['ratio'], '8.4f')}"
            f"{_fmt(row['dm_p'], '7.3f')}{_fmt(row['coverage_50'], '9.3f')}"
            f"{_fmt(row['width_50'], '11.4f')}{_fmt(row['coverage_90'], '9.3f')}"
            f"{_fmt(row['width_90'], '11.4f')}"
        )
    lines += [
        "",
        "ratio: model pinball / baseline pinball (< 1: the model is better);",
        "DM p: one-sided Diebold-Mariano, H1: the model's per-day pinball loss is smaller",
        "",
    ]
    if figures.get("summary"):
        lines.append(figures["summary"])
    lines.append(
        f"Point forecast (median) against persistence: mae_ratio {figures['mae_ratio']:.4f}"
    )
    gate = figures["gate"]
    lines.append(
        f"Gate: {'DEPLOY' if gate['deploy'] else 'NOT DEPLOYED'} ({gate['outcome']}): "
        f"{gate['reason']}"
    )
    model, hist = figures["rows"]["model"], figures["rows"].get("historical")
    checks = []
    if hist is not None and hist["ratio"] is not None:
        r = hist["ratio"]
        met = "yes" if r <= MAX_RATIO_OTHER_MARKETS else "NO"
        checks.append(f"pinball within 1% of historical quantiles: {met} (ratio {r:.4f})")
    if model.get("coverage_90") is not None:
        c = model["coverage_90"]
        low, high = COVERAGE_RANGE
        checks.append(
            f"90% coverage in {low}..{high}: {'yes' if low <= c <= high else 'NO'} ({c:.3f})"
        )
    if checks:
        lines.append("Goals on other markets (issue 18): " + "; ".join(checks))
    seconds = figures["seconds"]
    lines.append(
        "seconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        + f"; report: {figures['report']}"
    )
    return "\n".join(lines)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not Path(args.source).is_file():
        p.error(f"--source {args.source}: no such file")
    for name in ("trials", "max_epochs", "epochs", "ensemble_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.quantile_levels is not None:
        from components.common.quantiles import quantile_levels_problem

        problem = quantile_levels_problem(args.quantile_levels, gate_metric="pinball")
        if problem:
            p.error(f"--quantile-levels: {problem}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from components.common.results import ParameterError

    try:
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            figures = run(args, args.out)
        else:
            with tempfile.TemporaryDirectory(prefix="forecast-bench-") as tmp:
                figures = run(args, Path(tmp))
                figures["report"] = "(removed: use --out DIR to keep it)"
    except ParameterError as exc:
        p.error(str(exc))
    except Exception as exc:  # a step failed: its message names the problem
        print(f"forecast_bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(figures, indent=2) if args.json else table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
