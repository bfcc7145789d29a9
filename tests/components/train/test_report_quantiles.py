"""The report's quantile sections (no TensorFlow): the gate paragraph with the pinball
comparison and the coverage, the score table beside both baselines (GARCH failed or not),
the per-coin table, the fan chart and the calibration plot."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from components.train.baselines import Baseline
from components.train.evaluate import evaluate
from components.train.gate import GateDecision, decide_quantile, diebold_mariano
from components.train.report import (
    gate_paragraph,
    interval_indexes,
    plot_calibration,
    plot_fan,
    quantile_section,
    write_report,
)
from components.train.scores import against_baselines

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
Z = np.array([-1.6449, -0.6745, 0.0, 0.6745, 1.6449])


def scenario(garch_fails: bool = False, coins=("bitcoin",), n: int = 120, seed: int = 0):
    """Returns with clustering volatility; the model knows each day's scale, the historical
    baseline uses one scale for all, GARCH a slightly blurred one."""
    rng = np.random.default_rng(seed)
    coin = np.repeat(np.array(coins), n)
    dates = np.tile(np.arange("2018-01-01", n, dtype="datetime64[D]")[:n], len(coins))
    sigma = 0.02 * np.exp(np.sin(np.arange(len(coin)) / 9.0))
    actual = rng.normal(0, 1, len(coin)) * sigma
    model = sigma[:, None] * Z[None, :]
    historical = np.tile(np.std(actual) * Z, (len(coin), 1))
    garch = None if garch_fails else (sigma * 1.2)[:, None] * Z[None, :]
    note = "GARCH(1,1)-t fit failed for bitcoin: the optimiser did not converge (flag 4)"
    baselines = {
        "historical": Baseline("historical", "historical quantiles (365 d)", historical),
        "garch": Baseline("garch", "GARCH(1,1)-t", garch, note if garch_fails else "fit"),
    }
    today = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(coin))))
    return {
        "coins": coin,
        "dates": dates.astype(str),
        "today": today,
        "actual_next": today * np.exp(actual),
        "actual": actual,
        "quantiles": model,
        "forecast": against_baselines(actual, model, baselines, LEVELS),
    }


def comparison_for(s, *, metric="pinball", coverage_tolerance=0.05):
    forecast = s["forecast"]
    decision = decide_quantile(
        pinball_ratio=forecast["ratio"]["historical"],
        dm_baseline=forecast["dm"]["historical"],
        coverage=forecast["model"]["coverage_90"],
        coverage_tolerance=coverage_tolerance,
    )
    errors = {
        "model": s["today"] - s["actual_next"],
        "persistence": s["today"] * 1.001 - s["actual_next"],
    }
    return {
        "decision": decision,
        "metric": metric,
        "champion_version": None,
        "champion": None,
        "dm_baseline": diebold_mariano(errors["model"], errors["persistence"]),
        "dm_champion": None,
        "errors": errors,
        "dates": s["dates"],
        "metrics": {"significance": 0.05},
    }


def render(tmp_path, s, comparison, **kwargs) -> str:
    path = write_report(
        tmp_path / "report.html",
        model_name="m",
        version="3",
        evaluation=evaluate(s["today"], s["actual"], np.zeros(len(s["today"]))),
        passed_gate=comparison["decision"].deploy,
        max_mae_ratio=1.0,
        histories=[{"loss": [1.0, 0.5], "val_loss": [1.1, 0.9]}],
        comparison=comparison,
        hparams={"l2": 0.01},
        splits={"test": f"{len(s['today'])} rows"},
        coins=s["coins"],
        dates=s["dates"],
        today=s["today"],
        actual_next=s["actual_next"],
        predicted_next=s["today"],
        forecast=s["forecast"],
        quantiles=s["quantiles"],
        levels=LEVELS,
        **kwargs,
    )
    return path.read_text()


def images(text: str) -> list[str]:
    return re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)


def test_the_pinball_gate_paragraph_states_the_decision_the_comparison_and_the_coverage(
    tmp_path,
):
    s = scenario()
    comparison = comparison_for(s)
    f = s["forecast"]
    assert comparison["decision"].deploy  # the scenario's model has skill
    text = render(tmp_path, s, comparison, coverage_tolerance=0.05)
    top = text[text.index("<h1>") : text.index("<h2>")]
    assert "<b>Gate PASSED</b> (gate_metric pinball): deploy: no champion yet;" in top
    assert "The model will be deployed." in top
    r, p = f["ratio"]["historical"], f["dm"]["historical"].p_value
    assert (
        f"Against historical quantiles (365 d): pinball_ratio = model's mean pinball loss / "
        f"the baseline's = {r:.4f} ({r - 1:+.2%}), Diebold&ndash;Mariano p {p:.3f} "
        "(significance 0.05): significantly better." in top
    )
    c = f["model"]["coverage_90"]
    assert (
        f"90% interval coverage {c:.3f}: the share of test days inside the model's central "
        "90% interval (nominal 0.90 &plusmn; coverage_tolerance 0.05: within)." in top
    )
    g = f["ratio"]["garch"]
    assert f"Against GARCH(1,1)-t (not a gate condition): pinball_ratio {g:.4f}" in top
    # Persistence is still there, last, and says the pinball gate does not use it.
    assert top.index("Against persistence: mae_ratio") > top.index("90% interval coverage")
    assert "the pinball gate does not use it" in top


def test_a_failed_pinball_gate_names_the_condition_and_the_coverage_outside(tmp_path):
    s = scenario()
    comparison = comparison_for(s, coverage_tolerance=0.001)
    c = s["forecast"]["model"]["coverage_90"]
    assert not comparison["decision"].deploy and abs(c - 0.9) > 0.001
    top = gate_paragraph(
        passed_gate=False,
        evaluation=evaluate(s["today"], s["actual"], np.zeros(len(s["today"]))),
        max_mae_ratio=1.0,
        comparison=comparison,
        forecast=s["forecast"],
        coverage_tolerance=0.001,
    )
    assert "<b>Gate NOT PASSED</b> (gate_metric pinball): not deployed: 90% coverage" in top
    assert "coverage_tolerance 0.001: outside" in top
    assert "The model will not be deployed." in top
    # Without the tolerance the coverage is stated against the nominal level.
    plain = gate_paragraph(
        passed_gate=False,
        evaluation=evaluate(s["today"], s["actual"], np.zeros(len(s["today"]))),
        max_mae_ratio=1.0,
        comparison=comparison,
        forecast=s["forecast"],
    )
    word = "below" if c < 0.9 else "above"
    assert f"(nominal 0.90, {abs(c - 0.9):.3f} {word})" in plain


def test_the_mae_gate_keeps_the_persistence_paragraph(tmp_path):
    s = scenario()
    comparison = comparison_for(s, metric="mae")
    comparison["decision"] = GateDecision(False, "no-champion-failed", "not deployed: worse")
    text = render(tmp_path, s, comparison)
    top = text[text.index("<h1>") : text.index("<h2>")]
    assert top.count("<p") == 1 and "(gate_metric pinball)" not in top
    assert "<b>Gate NOT PASSED</b>: not deployed: worse. Against persistence: mae_ratio" in top


def test_score_table_has_the_model_both_baselines_ratios_and_dm(tmp_path):
    s = scenario()
    f = s["forecast"]
    table = quantile_section(f, comparison_for(s))
    cells = re.findall(r"<tr><td>([^<]+)</td>((?:<td>[^<]*</td>)+)</tr>", table)
    rows = {label: re.findall(r"<td>([^<]*)</td>", rest) for label, rest in cells}
    assert list(rows) == ["model", "historical quantiles (365 d)", "GARCH(1,1)-t"]
    model, hist, garch = rows.values()
    assert model[0] == f"{f['model']['pinball']:.6f}" and model[1:3] == ["&ndash;"] * 2
    assert model[3:] == [
        f"{f['model'][k]:{spec}}"
        for k, spec in (
            ("coverage_50", ".3f"),
            ("width_50", ".4f"),
            ("coverage_90", ".3f"),
            ("width_90", ".4f"),
            ("interval_score_90", ".4f"),
        )
    ]
    assert hist[:3] == [
        f"{f['historical']['pinball']:.6f}",
        f"{f['ratio']['historical']:.4f}",
        f"{f['dm']['historical'].p_value:.3f}",
    ]
    assert garch[1:3] == [f"{f['ratio']['garch']:.4f}", f"{f['dm']['garch'].p_value:.3f}"]
    assert "GARCH is for information" in table


def test_a_failed_garch_is_a_row_that_says_why(tmp_path):
    s = scenario(garch_fails=True)
    text = render(tmp_path, s, comparison_for(s), coverage_tolerance=0.05)
    assert (
        "<tr><td>GARCH(1,1)-t</td><td colspan='8' class='note'>unavailable: GARCH(1,1)-t fit "
        "failed for bitcoin: the optimiser did not converge (flag 4)</td></tr>" in text
    )
    assert "the gate uses the historical-quantile baseline alone" in text
    top = text[text.index("<h1>") : text.index("<h2>")]
    assert "GARCH(1,1)-t baseline unavailable: GARCH(1,1)-t fit failed for bitcoin" in top


def test_the_report_has_a_fan_chart_per_coin_and_a_calibration_plot(tmp_path):
    s = scenario(coins=("bitcoin", "ethereum"))
    text = render(tmp_path, s, comparison_for(s))
    alts = [alt for alt, _ in images(text)]
    assert alts.count("calibration plot") == 1
    assert [a for a in alts if a.endswith("fan chart")] == [
        "bitcoin fan chart",
        "ethereum fan chart",
    ]
    # The earlier plots are all still there.
    for alt in ("training curves", "error distribution", "cumulative plot"):
        assert alt in alts
    assert sum(a.endswith("actual vs predicted vs persistence") for a in alts) == 2
    for _, data in images(text):
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # Sections in order: the gate, the quantile scores, fan charts, calibration, point.
    order = [
        "Quantile forecast beside the baselines",
        "<h3>Per coin</h3>",
        "Fan chart of the test window",
        "<h2>Calibration</h2>",
        "Test metrics beside the persistence baseline",
        "Challenger against persistence and the champion",
    ]
    assert [text.index(h) for h in order] == sorted(text.index(h) for h in order)


def test_per_coin_quantile_table_by_coin(tmp_path):
    s = scenario(coins=("aaa", "bbb"), n=60)
    text = render(tmp_path, s, comparison_for(s))
    f = s["forecast"]
    for coin in ("aaa", "bbb"):
        rows = s["coins"] == coin
        model = float(np.mean(f["pinball"]["model"][rows]))
        hist = float(np.mean(f["pinball"]["historical"][rows]))
        q, a = s["quantiles"][rows], s["actual"][rows]
        coverage = float(np.mean((a >= q[:, 0]) & (a <= q[:, 4])))
        assert (
            f"<tr><td>{coin}</td><td>60</td><td>{model:.6f}</td><td>{hist:.6f}</td>"
            f"<td>{model / hist:.4f}</td>" in text
        )
        assert f"<td>{coverage:.3f}</td></tr>" in text.split(f"<tr><td>{coin}</td><td>60</td>")[1]


def test_interval_indexes_widest_first_and_only_forecast_ones():
    assert interval_indexes(LEVELS) == [("90", 0, 4), ("50", 1, 3)]
    assert interval_indexes((0.25, 0.5, 0.75)) == [("50", 0, 2)]
    assert interval_indexes((0.1, 0.5, 0.9)) == []


@pytest.mark.parametrize("levels", [LEVELS, (0.1, 0.5, 0.9)])
def test_plots_render_for_any_levels(levels):
    s = scenario(n=40)
    k = len(levels)
    q = s["quantiles"][:, [0, 2, 4]] if k == 3 else s["quantiles"]
    for data in (
        plot_fan(s["dates"], s["today"], s["actual_next"], q, levels, "t"),
        plot_calibration(s["actual"], q, levels),
    ):
        assert base64.b64decode(data)[:4] == b"\x89PNG"


def test_plots_show_the_coins_with_most_rows_and_say_how_many_are_left_out():
    import numpy as np

    from components.train import report

    coins = np.array(["a"] * 2 + ["b"] * 5 + ["c"] * 3 + ["d"] * 4)
    shown = report._plotted_coins(coins)
    assert shown == ["b", "d", "c"][: report.MAX_COINS_PLOTTED]
    left = 4 - report.MAX_COINS_PLOTTED
    assert report._not_plotted(coins) == (
        f"<p>{left} more coin(s) not plotted.</p>" if left > 0 else ""
    )
    assert report._not_plotted(np.array(["a", "a"])) == ""
