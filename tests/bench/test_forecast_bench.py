"""``python -m bench.forecast_bench`` end to end on a small file in another schema (a column
mapping), with tiny budgets; its table; its usage errors and a failing step."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.forecast_bench import table
from components.train.gate import OUTCOMES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Another schema: other names, other order, no market/rank columns.
HEADER = ["Day", "Ticker", "Open", "High", "Low", "Close", "Volume"]
MAPPING = {
    "date": "Day",
    "slug": "Ticker",
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Close",
    "volume": "Volume",
}
TINY = ["--trials", "1", "--max-epochs", "2", "--epochs", "2", "--ensemble-size", "1"]


def bench(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.forecast_bench", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def small_csv(bitcoin_csv, tmp_path_factory) -> Path:
    """The last 500 Bitcoin days, renamed to the ticker "btc", in the schema above."""
    with bitcoin_csv.open() as f:
        rows = list(csv.DictReader(f))[-500:]
    path = tmp_path_factory.mktemp("bench") / "my-market.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for r in rows:
            out.writerow(
                [r["date"], "btc", r["open"], r["high"], r["low"], r["close"], r["volume"]]
            )
    return path


@pytest.mark.slow
def test_the_bench_runs_the_three_steps_and_prints_the_scores(small_csv, tmp_path):
    out = tmp_path / "out"
    done = bench(
        "--source",
        str(small_csv),
        "--column-mapping",
        json.dumps(MAPPING),
        "--coins",
        "btc",
        "--out",
        str(out),
        "--json",
        *TINY,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["coins"] == ["btc"]
    assert figures["quantile_levels"] == [0.05, 0.25, 0.5, 0.75, 0.95]
    rows = figures["rows"]
    model, hist = rows["model"], rows["historical"]
    assert 0 < figures["test"]["rows"] < 100 and figures["test"]["end"] == "2018-03-24"
    assert model["ratio"] is None and model["dm_p"] is None
    assert hist["ratio"] == pytest.approx(model["pinball"] / hist["pinball"], rel=1e-9)
    assert 0 <= hist["dm_p"] <= 1
    for row in rows.values():
        assert 0 <= row["coverage_50"] <= row["coverage_90"] <= 1
        assert 0 < row["width_50"] < row["width_90"]
    if "garch" in rows:
        assert rows["garch"]["ratio"] == pytest.approx(
            model["pinball"] / rows["garch"]["pinball"], rel=1e-9
        )
    else:
        assert "GARCH(1,1)-t fit failed" in figures["garch_note"]
    assert figures["gate"]["outcome"] in OUTCOMES and figures["gate"]["reason"]
    assert figures["summary"].startswith(
        f"Against historical quantiles: pinball_ratio {hist['ratio']:.4f}, "
        f"DM p {hist['dm_p']:.3f}; against GARCH(1,1)-t: "
    )
    assert set(figures["seconds"]) == {"transform", "tune", "train"}
    # --out keeps what the steps wrote: the report with its quantile sections.
    report = Path(figures["report"]).read_text()
    assert "Fan chart of the test window" in report and "Calibration" in report
    assert (out / "best_params.json").is_file() and (out / "features").is_dir()
    # The printed table says the same (rendered from the same figures).
    text = table(figures)
    assert f"{hist['ratio']:.4f}" in text and figures["gate"]["reason"] in text


def figures(garch: bool = True) -> dict:
    row = {
        "pinball": 0.0123456,
        "coverage_50": 0.5,
        "width_50": 0.04,
        "coverage_90": 0.88,
        "width_90": 0.12,
    }
    rows = {
        "model": {"label": "model", **row, "ratio": None, "dm_p": None},
        "historical": {
            **row,
            "label": "historical",
            "pinball": 0.0125,
            "ratio": 0.98765,
            "dm_p": 0.0123,
        },  # fmt: skip
    }
    if garch:
        rows["garch"] = {**row, "label": "g", "pinball": 0.0124, "ratio": 0.9956, "dm_p": 0.3}
    return {
        "source": "mine.csv",
        "coins": ["aaa", "bbb"],
        "test": {"start": "2018-01-01", "end": "2018-03-01", "rows": 120},
        "rows": rows,
        "garch_note": "" if garch else "GARCH(1,1)-t fit failed for aaa: did not converge",
        "gate": {"deploy": False, "outcome": "miscalibrated", "reason": "not deployed: x"},
        "mae_ratio": 0.9991,
        "quantile_levels": [0.05, 0.25, 0.5, 0.75, 0.95],
        "seconds": {"transform": 3.2, "tune": 20.0, "train": 30.4},
        "report": "r.html",
        "summary": "Against historical quantiles: ...",
    }


def test_the_table_lines():
    lines = table(figures()).splitlines()
    assert lines[1] == (
        "coins: aaa, bbb; test split 2018-01-01 .. 2018-03-01 (120 rows); "
        "levels 0.05,0.25,0.5,0.75,0.95"
    )
    header = next(i for i, line in enumerate(lines) if "pinball" in line and "ratio" in line)
    assert lines[header + 1].split() == [
        "model", "0.012346", "-", "-", "0.500", "0.0400", "0.880", "0.1200"
    ]  # fmt: skip
    assert lines[header + 2].split()[-7:] == [
        "0.012500", "0.9877", "0.012", "0.500", "0.0400", "0.880", "0.1200"
    ]  # fmt: skip
    assert len(lines[header + 1]) == len(lines[header + 2])  # columns line up
    text = "\n".join(lines)
    assert "Gate: NOT DEPLOYED (miscalibrated): not deployed: x" in text
    assert "pinball within 1% of historical quantiles: yes (ratio 0.9877)" in text
    assert "90% coverage in 0.85..0.95: yes (0.880)" in text
    assert "mae_ratio 0.9991" in text


def test_a_failed_garch_is_a_line_that_says_why():
    text = table(figures(garch=False))
    assert "GARCH(1,1)-t          unavailable: GARCH(1,1)-t fit failed for aaa" in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--source", "no-such.csv"], "no-such.csv: no such file"),
        (["--trials", "0"], "--trials must be >= 1"),
        (["--quantile-levels", "0.25,0.75"], "must include 0.5"),
        (["--quantile-levels", "0.25,0.5,0.75"], "must include 0.05 and 0.95"),
    ],
)
def test_usage_errors_exit_2(bitcoin_csv, args, words):
    done = bench("--source", str(bitcoin_csv), *args, timeout=120)
    assert done.returncode == 2 and words in done.stderr


def test_a_failing_step_exits_1_with_its_message(bitcoin_csv):
    done = bench("--source", str(bitcoin_csv), "--coins", "dogecoin", *TINY, timeout=600)
    assert done.returncode == 1
    assert "coins not in the input: dogecoin" in done.stderr
