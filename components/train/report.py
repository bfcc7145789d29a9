"""The train step's HTML report: the gate decision, the quantile forecast beside its
baselines (score table, fan chart, calibration plot), the point forecast beside persistence,
and plots (PNG embedded as base64, so the KFP UI renders it standalone)."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from components.common.quantiles import GATE_INTERVAL, INTERVALS
from components.train.baselines import HISTORY_WINDOW
from components.train.evaluate import METRIC_NAMES

#: Plots of actual vs predicted prices for at most this many coins (largest first).
MAX_COINS_PLOTTED = 3


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def plot_prices(
    dates: Sequence[str],
    actual: np.ndarray,
    predicted: np.ndarray,
    baseline: np.ndarray,
    title: str,
) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(dates, dtype="datetime64[D]")
    fig, (ax, low) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    ax.plot(x, actual, label="actual next-day close", color="black", linewidth=1.2)
    ax.plot(x, predicted, label="model (median)", color="tab:blue", linewidth=1)
    ax.plot(
        x,
        baseline,
        label="persistence (today's close)",
        color="tab:orange",
        linewidth=1,
        linestyle="--",
    )
    ax.set_title(title)
    ax.set_ylabel("close")
    ax.legend()
    # The price lines nearly coincide; the change from today shows what the model adds.
    low.plot(x, 100 * (actual / baseline - 1), color="black", linewidth=0.6, label="actual")
    low.plot(x, 100 * (predicted / baseline - 1), color="tab:blue", linewidth=1.2, label="model")
    low.axhline(0, color="tab:orange", linestyle="--", linewidth=1, label="persistence")
    low.set_ylabel("change from today, %")
    low.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    return _png(fig)


def plot_histories(histories: Sequence[Mapping[str, Sequence[float]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, history in enumerate(histories):
        color = plt.cm.tab10(i % 10)
        for key, style in (("loss", "-"), ("val_loss", "--")):
            if key in history:
                label = f"net {i + 1}" if key == "loss" else None
                ax.plot(
                    np.arange(1, len(history[key]) + 1),
                    history[key],
                    style,
                    color=color,
                    label=label,
                )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("pinball loss, standardised target")
    ax.set_title("Training curves (solid: train incl. L2 penalty, dashed: eval)")
    ax.legend(fontsize="small")
    return _png(fig)


def plot_errors(model_error: np.ndarray, baseline_error: np.ndarray) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    both = np.concatenate([model_error, baseline_error])
    bins = np.linspace(np.min(both), np.max(both), 40) if np.ptp(both) > 0 else 10
    ax.hist(baseline_error, bins=bins, alpha=0.5, label="persistence", color="tab:orange")
    ax.hist(model_error, bins=bins, alpha=0.5, label="model", color="tab:blue")
    ax.set_xlabel("predicted - actual next-day close")
    ax.set_ylabel("days")
    ax.set_title("Error distribution (test split)")
    ax.legend()
    return _png(fig)


def human(value: float) -> str:
    """A number rounded for people: 4 significant digits below 1000, else 2 decimals with
    thousands separators; inf and nan as words."""
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def _metrics_table(evaluation: Mapping, champion: Mapping | None = None) -> str:
    rows = []
    for name in METRIC_NAMES:
        m, b = evaluation["model"][name], evaluation["baseline"][name]
        c = f"<td>{human(champion[name])}</td>" if champion else ""
        rows.append(f"<tr><td>{name}</td><td>{human(m)}</td><td>{human(b)}</td>{c}</tr>")
    head = "<th>champion</th>" if champion else ""
    return (
        "<table><tr><th>metric (test split, price)</th><th>model</th><th>persistence</th>"
        f"{head}</tr>" + "".join(rows) + "</table>"
    )


#: The metrics that get a verdict line (lower is better for each).
VERDICT_METRICS = ("mae", "rmse", "mape")
#: Relative differences below this are "level with": no one wins by a rounding error.
LEVEL = 1e-4


def verdicts(evaluation: Mapping, champion: Mapping | None) -> list[str]:
    """One line per metric: better or worse than persistence, and than the champion."""
    lines = []
    for name in VERDICT_METRICS:
        model = evaluation["model"][name]
        parts = []
        for who, other in (("persistence", evaluation["baseline"][name]), ("the champion",
                           champion[name] if champion else None)):  # fmt: skip
            if other is None:
                parts.append("no champion to compare with")
                continue
            change = model / other - 1 if other else 0.0
            if abs(change) < LEVEL:
                parts.append(f"level with {who} ({human(other)})")
                continue
            word = "better" if change < 0 else "worse"
            parts.append(f"{word} than {who} ({human(other)}, {change:+.2%})")
        lines.append(f"{name.upper()} {human(model)}: " + "; ".join(parts))
    return lines


def plot_cumulative(dates: np.ndarray, errors: Mapping[str, np.ndarray]) -> str:
    """Cumulative ``|other error| - |model error|`` over the test window, summed over the
    coins of each day: rising where the model wins, falling where it loses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days, index = np.unique(np.asarray(dates, dtype="datetime64[D]"), return_inverse=True)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    model = np.abs(errors["model"])
    for who, color in (("persistence", "tab:orange"), ("champion", "tab:green")):
        if who in errors:
            gain = np.bincount(index, weights=np.abs(errors[who]) - model, minlength=days.size)
            ax.plot(days, np.cumsum(gain), color=color, label=f"vs {who}")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("cumulative |error| saved, price")
    ax.set_title("Where the model wins (rising) or loses (falling) over the test window")
    ax.legend()
    fig.autofmt_xdate()
    return _png(fig)


def _dm_line(who: str, dm) -> str:
    return (
        f"<li>against {who}: DM* = {dm.statistic:.2f}, one-sided p = {dm.p_value:.3g} "
        f"({dm.n} forecasts)</li>"
    )


def lineage_section(lineage: Mapping[str, object], hparams: Mapping[str, object]) -> str:
    """What this model was made from: one row per fact, one per image, the
    hyper-parameters on one line (rounded)."""
    rows: dict[str, object] = {}
    for key, value in lineage.items():
        if isinstance(value, Mapping):
            rows |= {f"{key.removesuffix('s')} {k}": v for k, v in sorted(value.items())}
        else:
            rows[key] = value
    rows["hyper-parameters"] = ", ".join(
        f"{k}={human(v) if isinstance(v, float) else v}" for k, v in hparams.items()
    )
    body = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<h2>Lineage</h2>\n<table class='lineage'>{body}</table>"


def comparison_section(comparison: Mapping, evaluation: Mapping) -> str:
    """Verdicts, the Diebold–Mariano tests, the cumulative plot and the decision."""
    decision = comparison["decision"]
    champion = comparison.get("champion")
    version = comparison.get("champion_version")
    who = f"champion version {version}" if champion else "no champion (first deploy)"
    lines = "".join(f"<li>{html.escape(v)}</li>" for v in verdicts(evaluation, champion))
    tests = _dm_line("persistence", comparison["dm_baseline"])
    pinball_tests = ""
    if comparison.get("dm_champion") is not None:
        line = _dm_line(f"champion {version}", comparison["dm_champion"])
        if comparison.get("metric") == "pinball":  # the pinball gate tests pinball losses
            pinball_tests = (
                "<p>Diebold–Mariano test on the per-day pinball losses (the pinball gate's; "
                f"H1: the model's expected loss is smaller):</p>\n<ul class='dm'>{line}</ul>"
            )
        else:
            tests += line
    plot = _img(plot_cumulative(comparison["dates"], comparison["errors"]), "cumulative plot")
    css = "passed" if decision.deploy else "failed"
    return f"""<h2>Challenger against persistence and the champion</h2>
<p class='{css}'><b>Decision</b>: {html.escape(decision.reason)}.</p>
<p>Compared with: {html.escape(who)}, on the same test window.</p>
<ul class='verdicts'>{lines}</ul>
<p>Diebold–Mariano test on absolute errors with the Harvey–Leybourne–Newbold correction
(H1: the model's expected absolute error is smaller):</p>
<ul class='dm'>{tests}</ul>
{pinball_tests}
{plot}"""


def _kv_table(values: Mapping[str, object]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td>"
        f"<td>{html.escape(human(v) if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in values.items()
    )
    return f"<table>{rows}</table>"


def per_coin_mae(
    coins: np.ndarray, today: np.ndarray, actual_next: np.ndarray, predicted_next: np.ndarray
) -> list[tuple[str, int, float, float]]:
    """``(coin, rows, model MAE, persistence MAE)`` per coin, most rows first.

    Pooled price MAE is dominated by the most expensive coins; this shows each one.
    """
    names, counts = np.unique(coins, return_counts=True)
    out = []
    for coin in names[np.argsort(-counts, kind="stable")]:
        rows = coins == coin
        model = float(np.mean(np.abs(predicted_next[rows] - actual_next[rows])))
        baseline = float(np.mean(np.abs(today[rows] - actual_next[rows])))
        out.append((str(coin), int(rows.sum()), model, baseline))
    return out


def per_coin_table(coins, today, actual_next, predicted_next) -> str:
    rows = per_coin_mae(coins, today, actual_next, predicted_next)
    beating = sum(1 for _, _, model, baseline in rows if model < baseline)
    lines = [
        "<h2>Per coin</h2>",
        f"<p>The pooled MAE above weighs coins by price level; {beating} of {len(rows)} coins "
        "beat persistence on their own.</p>",
        "<table><tr><th>coin</th><th>rows</th><th>model MAE</th><th>persistence MAE</th>"
        "<th>mae_ratio</th></tr>",
    ]
    for coin, n, model, baseline in rows:
        ratio = model / baseline if baseline > 0 else float("nan")
        lines.append(
            f"<tr><td>{html.escape(coin)}</td><td>{n}</td><td>{human(model)}</td>"
            f"<td>{human(baseline)}</td><td>{ratio:.4f}</td></tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


#: The quantile baselines in the score table's order, with their labels.
BASELINE_LABELS = {
    "historical": f"historical quantiles ({HISTORY_WINDOW} d)",
    "garch": "GARCH(1,1)-t",
}


def interval_indexes(levels: Sequence[float]) -> list[tuple[str, int, int]]:
    """``(name, lower index, upper index)`` of each central interval of ``INTERVALS``
    whose two levels are forecast, the widest first."""
    levels = [float(v) for v in levels]
    found = [
        (name, levels.index(lower), levels.index(upper))
        for name, (lower, upper) in INTERVALS.items()
        if lower in levels and upper in levels
    ]
    return sorted(found, key=lambda item: levels[item[1]])


def plot_fan(
    dates: Sequence[str],
    today: np.ndarray,
    actual_next: np.ndarray,
    quantiles: np.ndarray,
    levels: Sequence[float],
    title: str,
) -> str:
    """Fan chart of one coin's test window: the central intervals and the median of the
    next close (``close · exp(q)``), plotted on the day they forecast, and the actual close;
    below, the same as a change from the day before, in percent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(dates, dtype="datetime64[D]") + np.timedelta64(1, "D")
    today = np.asarray(today, dtype=np.float64)
    actual_next = np.asarray(actual_next, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    prices = today[:, None] * np.exp(q)
    change = 100 * np.expm1(q)
    mid = [float(v) for v in levels].index(0.5)
    intervals = interval_indexes(levels)
    fig, (ax, low) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    shade = {0: 0.2, 1: 0.4}
    for k, (name, lo, hi) in enumerate(intervals):
        style = {"color": "tab:blue", "alpha": shade.get(k, 0.5), "linewidth": 0}
        ax.fill_between(x, prices[:, lo], prices[:, hi], label=f"central {name}%", **style)
        low.fill_between(x, change[:, lo], change[:, hi], **style)
    ax.plot(x, prices[:, mid], color="tab:blue", linewidth=1, label="median")
    ax.plot(x, actual_next, color="black", linewidth=1, label="actual close")
    low.plot(x, change[:, mid], color="tab:blue", linewidth=0.8)
    low.plot(x, 100 * (actual_next / today - 1), color="black", linewidth=0.6)
    if intervals:
        name, lo, hi = intervals[0]
        outside = (actual_next < prices[:, lo]) | (actual_next > prices[:, hi])
        ax.scatter(
            x[outside],
            actual_next[outside],
            color="tab:red",
            s=10,
            zorder=3,
            label=f"outside the {name}% interval ({int(outside.sum())} of {len(x)} days)",
        )
    ax.set_title(title)
    positive = actual_next[actual_next > 0]
    if positive.size and positive.max() > 4 * positive.min():  # a price that multiplied
        ax.set_yscale("log")
        ax.set_ylabel("close (log scale)")
    else:
        ax.set_ylabel("close")
    ax.legend(loc="upper left", fontsize="small")
    low.axhline(0, color="grey", linewidth=0.6)
    low.set_ylabel("change from the day before, %")
    fig.autofmt_xdate()
    return _png(fig)


def plot_calibration(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> str:
    """Observed share of test days at or below each quantile against its level, with the
    diagonal (perfect calibration) and the 95% band of a calibrated forecast's share
    over this many independent days."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from components.train.scores import calibration

    shares = calibration(actual, quantiles, levels)
    level = np.asarray([float(v) for v in levels])
    observed = np.asarray([shares[repr(v)] for v in level.tolist()])
    n = len(np.asarray(actual))
    grid = np.linspace(0.0, 1.0, 201)
    band = 1.96 * np.sqrt(grid * (1 - grid) / max(n, 1))
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.fill_between(
        grid,
        grid - band,
        grid + band,
        color="grey",
        alpha=0.2,
        linewidth=0,
        label=f"95% band of a calibrated forecast ({n} days)",
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    ax.plot(level, observed, "o-", color="tab:blue", label="model")
    for v, share in zip(level, observed, strict=True):
        ax.annotate(f"{share:.3f}", (v, share), textcoords="offset points", xytext=(6, -10))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("quantile level")
    ax.set_ylabel("share of test days at or below the quantile")
    ax.set_title("Calibration of the quantiles (test split)")
    ax.legend(loc="upper left", fontsize="small")
    return _png(fig)


def _cell(value: float | None, spec: str) -> str:
    if value is None or value != value:
        return "<td>&ndash;</td>"
    return f"<td>{value:{spec}}</td>"


def quantile_section(forecast: Mapping, comparison: Mapping | None = None) -> str:
    """The score table: the model's quantile scores beside each baseline's (and the
    champion's pinball loss when the pinball gate compared with one), the ratio of the
    model's mean pinball loss to each and the Diebold-Mariano p-value; a failed baseline
    is a row that says why."""
    metrics = (comparison or {}).get("metrics", {})
    head = (
        "<tr><th>forecast</th><th>mean pinball</th><th>model &divide; it</th>"
        "<th>DM p</th><th>coverage 50%</th><th>width 50%</th><th>coverage 90%</th>"
        "<th>width 90%</th><th>interval score 90%</th></tr>"
    )
    rows = ["<h2>Quantile forecast beside the baselines</h2>", "<table>", head]

    def row(label: str, scores: Mapping, ratio=None, dm=None) -> str:
        return (
            f"<tr><td>{html.escape(label)}</td>{_cell(scores.get('pinball'), '.6f')}"
            f"{_cell(ratio, '.4f')}{_cell(None if dm is None else dm.p_value, '.3f')}"
            f"{_cell(scores.get('coverage_50'), '.3f')}{_cell(scores.get('width_50'), '.4f')}"
            f"{_cell(scores.get('coverage_90'), '.3f')}{_cell(scores.get('width_90'), '.4f')}"
            f"{_cell(scores.get('interval_score_90'), '.4f')}</tr>"
        )

    crossings = int(forecast["model"].get("crossings", 0))
    rows.append(
        row("model" + (f" ({crossings} crossed days)" if crossings else ""), forecast["model"])
    )
    unavailable = forecast.get("unavailable", {})
    for who, label in BASELINE_LABELS.items():
        if who in forecast:
            rows.append(
                row(label, forecast[who], forecast["ratio"].get(who), forecast["dm"].get(who))
            )
        elif who in unavailable:
            rows.append(
                f"<tr><td>{html.escape(label)}</td><td colspan='8' class='note'>unavailable: "
                f"{html.escape(unavailable[who])}</td></tr>"
            )
    if "champion_pinball" in metrics and comparison.get("dm_champion") is not None:
        version = comparison.get("champion_version")
        rows.append(
            row(
                f"champion {version}",
                {"pinball": metrics["champion_pinball"]},
                metrics.get("champion_pinball_ratio"),
                comparison["dm_champion"],
            )
        )
    rows.append("</table>")
    notes = [
        "Pinball loss: mean over the test days and the quantile levels, in log-return units "
        "(lower is better); <i>model &divide; it</i> is the model's mean pinball loss over "
        "that forecast's; <i>DM p</i>: one-sided Diebold&ndash;Mariano test on the per-day "
        "pinball losses (H1: the model's are smaller). Coverage: share of test days whose "
        "actual return fell inside the central interval (bounds included); width: its mean "
        "width in log return (about the relative price width); interval score: "
        "Gneiting&ndash;Raftery's, width plus penalties for misses (lower is better)."
    ]
    if unavailable.get("garch"):
        notes.append(
            "The GARCH(1,1)-t baseline is unavailable on this data; the gate uses the "
            "historical-quantile baseline alone."
        )
    elif forecast.get("garch") is not None:
        notes.append("The gate compares with the historical quantiles; GARCH is for information.")
    rows.append("<p>" + " ".join(notes) + "</p>")
    return "\n".join(rows)


def per_coin_quantile_table(
    coins: np.ndarray, forecast: Mapping, actual: np.ndarray, quantiles: np.ndarray, levels
) -> str:
    """Per coin: rows, mean pinball of the model and each available baseline, their ratio,
    and the model's 90% coverage (a pooled score can hide a coin that loses)."""
    names, counts = np.unique(coins, return_counts=True)
    baselines = [w for w in BASELINE_LABELS if w in forecast["pinball"]]
    intervals = {name: (lo, hi) for name, lo, hi in interval_indexes(levels)}
    head = "".join(
        f"<th>{html.escape(BASELINE_LABELS[w])}</th><th>model &divide; it</th>" for w in baselines
    )
    lines = [
        "<h3>Per coin</h3>",
        f"<table><tr><th>coin</th><th>rows</th><th>model pinball</th>{head}"
        "<th>coverage 90%</th></tr>",
    ]
    beating = 0
    for coin in names[np.argsort(-counts, kind="stable")]:
        rows = coins == coin
        model = float(np.mean(forecast["pinball"]["model"][rows]))
        cells = ""
        for w in baselines:
            other = float(np.mean(forecast["pinball"][w][rows]))
            ratio = model / other if other > 0 else float("nan")
            beating += w == "historical" and ratio < 1
            cells += f"<td>{other:.6f}</td>{_cell(ratio, '.4f')}"
        coverage = None
        if GATE_INTERVAL in intervals:
            lo, hi = intervals[GATE_INTERVAL]
            inside = (actual[rows] >= quantiles[rows, lo]) & (actual[rows] <= quantiles[rows, hi])
            coverage = float(np.mean(inside))
        lines.append(
            f"<tr><td>{html.escape(str(coin))}</td><td>{int(rows.sum())}</td>"
            f"<td>{model:.6f}</td>{cells}{_cell(coverage, '.3f')}</tr>"
        )
    lines.append("</table>")
    if "historical" in baselines:
        lines.insert(1, f"<p>{beating} of {len(names)} coins beat the historical quantiles.</p>")
    return "\n".join(lines)


def _plotted_coins(coins: np.ndarray) -> list:
    """The coins a plot shows: the ones with the most rows first, at most MAX_COINS_PLOTTED."""
    names, counts = np.unique(coins, return_counts=True)
    return list(names[np.argsort(-counts, kind="stable")][:MAX_COINS_PLOTTED])


def _not_plotted(coins: np.ndarray) -> str:
    """The line saying how many coins a plot left out (empty when none)."""
    left = len(np.unique(coins)) - MAX_COINS_PLOTTED
    return f"<p>{left} more coin(s) not plotted.</p>" if left > 0 else ""


def fan_section(coins, dates, today, actual_next, quantiles, levels) -> str:
    plots = []
    for coin in _plotted_coins(coins):
        rows = coins == coin
        plots.append(
            _img(
                plot_fan(
                    dates[rows],
                    today[rows],
                    actual_next[rows],
                    quantiles[rows],
                    levels,
                    f"{coin}: forecast of the next close, test period",
                ),
                f"{coin} fan chart",
            )
        )
    plots.append(_not_plotted(coins))
    bands = ", ".join(f"{name}%" for name, _, _ in reversed(interval_indexes(levels)))
    return (
        "<h2>Fan chart of the test window</h2>\n"
        f"<p>Each day's forecast of the next close: the central {bands or 'no'} interval(s) "
        "and the median (close &middot; exp(quantile)), drawn on the day they forecast, with "
        "the actual close; red points fall outside the widest band.</p>\n" + "".join(plots)
    )


def calibration_section(actual: np.ndarray, quantiles: np.ndarray, levels) -> str:
    return (
        "<h2>Calibration</h2>\n<p>For each quantile level, the share of test days whose actual "
        "return was at or below the forecast quantile; a calibrated forecast lies on the "
        "diagonal (within the grey band: sampling noise, were the days independent).</p>\n"
        + _img(plot_calibration(actual, quantiles, levels), "calibration plot")
    )


def gate_paragraph(
    *,
    passed_gate: bool,
    evaluation: Mapping,
    max_mae_ratio: float,
    comparison: Mapping | None,
    forecast: Mapping | None,
    coverage_tolerance: float | None = None,
) -> str:
    """The report's first paragraph: the decision; with the pinball gate, the pinball
    comparison with the historical quantiles (and GARCH) and the 90% coverage, then the
    persistence comparison as a secondary fact; with the MAE gate, persistence."""
    ratio = evaluation["mae_ratio"]
    verdict = "PASSED" if passed_gate else "NOT PASSED"
    css = "passed" if passed_gate else "failed"
    beats = ratio <= max_mae_ratio
    decided = f"{html.escape(comparison['decision'].reason)}. " if comparison else ""
    # The persistence comparison is its own sentence: a gate that the champion or the
    # identity rule stopped must not read as if the model had lost to persistence.
    persistence = (
        "Against persistence: mae_ratio = model MAE / persistence MAE = "
        f"{ratio:.4f} {'&le;' if beats else '&gt;'} max_mae_ratio {max_mae_ratio:g} "
        f"({'beats' if beats else 'does not beat'} it)."
    )
    deployed = "The model will be deployed." if passed_gate else "The model will not be deployed."
    metric = comparison.get("metric", "mae") if comparison else "mae"
    if metric != "pinball" or not forecast:
        return f"<p class='{css}'><b>Gate {verdict}</b>: {decided}{persistence} {deployed}</p>"
    significance = float(comparison.get("metrics", {}).get("significance", 0.05))
    facts = []
    if "historical" in forecast["ratio"]:
        r, dm = forecast["ratio"]["historical"], forecast["dm"]["historical"]
        if r < 1 and dm.p_value < significance:
            word = "significantly better"
        elif r < 1:
            word = "better, but not significantly"
        else:
            word = "not better"
        facts.append(
            f"Against {BASELINE_LABELS['historical']}: pinball_ratio = model's mean pinball "
            f"loss / the baseline's = {r:.4f} ({r - 1:+.2%}), Diebold&ndash;Mariano p "
            f"{dm.p_value:.3f} (significance {significance:g}): {word}."
        )
    lower, upper = INTERVALS[GATE_INTERVAL]
    nominal = upper - lower
    coverage = forecast["model"].get(f"coverage_{GATE_INTERVAL}")
    if coverage is not None:
        miss = coverage - nominal
        if coverage_tolerance is None:
            judged = f"nominal {nominal:.2f}, {abs(miss):.3f} {'below' if miss < 0 else 'above'}"
        else:
            inside = abs(miss) <= coverage_tolerance + 1e-12
            judged = (
                f"nominal {nominal:.2f} &plusmn; coverage_tolerance {coverage_tolerance:g}: "
                f"{'within' if inside else 'outside'}"
            )
        facts.append(
            f"{GATE_INTERVAL}% interval coverage {coverage:.3f}: the share of test days "
            f"inside the model's central {GATE_INTERVAL}% interval ({judged})."
        )
    if "garch" in forecast["ratio"]:
        r, dm = forecast["ratio"]["garch"], forecast["dm"]["garch"]
        facts.append(
            f"Against {BASELINE_LABELS['garch']} (not a gate condition): pinball_ratio "
            f"{r:.4f} ({r - 1:+.2%}), DM p {dm.p_value:.3f}."
        )
    elif "garch" in forecast.get("unavailable", {}):
        facts.append(
            f"{BASELINE_LABELS['garch']} baseline unavailable: "
            f"{html.escape(forecast['unavailable']['garch'])}; the gate uses the "
            "historical-quantile baseline alone."
        )
    facts.append(
        f"{persistence} That is the point forecast (the median); the pinball gate does not use it."
    )
    items = "".join(f"<li>{fact}</li>" for fact in facts)
    return (
        f"<p class='{css}'><b>Gate {verdict}</b> (gate_metric pinball): {decided}{deployed}</p>\n"
        f"<ul class='gate'>{items}</ul>"
    )


def write_report(
    path: str | os.PathLike,
    *,
    model_name: str,
    version: str,
    evaluation: Mapping,
    passed_gate: bool,
    max_mae_ratio: float,
    histories: Sequence[Mapping[str, Sequence[float]]],
    comparison: Mapping | None = None,
    lineage: Mapping[str, object] | None = None,
    hparams: Mapping[str, object],
    splits: Mapping[str, object],
    coins: np.ndarray,
    dates: np.ndarray,
    today: np.ndarray,
    actual_next: np.ndarray,
    predicted_next: np.ndarray,
    forecast: Mapping | None = None,
    quantiles: np.ndarray | None = None,
    levels: Sequence[float] = (),
    coverage_tolerance: float | None = None,
) -> Path:
    """Write the report to ``path`` (parents created) and return it. ``forecast``
    (``scores.against_baselines``), ``quantiles`` (``[rows, levels]`` log returns) and
    ``levels`` add the quantile forecast's sections: the score table, a fan chart per coin
    and the calibration plot; ``coverage_tolerance`` (the pinball gate's) lets the first
    paragraph judge the coverage."""
    gate = gate_paragraph(
        passed_gate=passed_gate,
        evaluation=evaluation,
        max_mae_ratio=max_mae_ratio,
        comparison=comparison,
        forecast=forecast,
        coverage_tolerance=coverage_tolerance,
    )
    champion = comparison.get("champion") if comparison else None
    compared = comparison_section(comparison, evaluation) if comparison else ""
    lineage_html = lineage_section(lineage, hparams) if lineage else ""
    price_plots = []
    for coin in _plotted_coins(coins):
        rows = coins == coin
        price_plots.append(
            _img(
                plot_prices(
                    dates[rows],
                    actual_next[rows],
                    predicted_next[rows],
                    today[rows],
                    f"{coin}: test period",
                ),
                f"{coin} actual vs predicted vs persistence",
            )
        )
    price_plots.append(_not_plotted(coins))
    several = len(np.unique(coins)) > 1
    per_coin = per_coin_table(coins, today, actual_next, predicted_next) if several else ""
    quantile_html = ""
    if forecast:
        quantile_html = quantile_section(forecast, comparison)
        if quantiles is not None and len(levels):
            quantiles = np.asarray(quantiles, dtype=np.float64)
            actual = np.log(np.asarray(actual_next, dtype=np.float64) / np.asarray(today))
            if several:
                quantile_html += "\n" + per_coin_quantile_table(
                    coins, forecast, actual, quantiles, levels
                )
            quantile_html += "\n" + fan_section(coins, dates, today, actual_next, quantiles, levels)
            quantile_html += "\n" + calibration_section(actual, quantiles, levels)
    body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(model_name)} {html.escape(version)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:1em auto}}
table{{border-collapse:collapse;margin:0.5em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
table.lineage td{{text-align:left;font-family:monospace}}
td.note{{text-align:left}}
.passed{{color:#060}}.failed{{color:#a00}}</style></head><body>
<h1>Train report: {html.escape(model_name)} version {html.escape(version)}</h1>
{gate}
{quantile_html}
<h2>Test metrics beside the persistence baseline</h2>
<p>Next-day close on the test split ({len(today)} rows); persistence forecasts
tomorrow's close = today's close. MAPE in percent; directional accuracy counts "no change"
as its own direction, so persistence scores only on flat days.</p>
{_metrics_table(evaluation, champion)}
{compared}
{lineage_html}
{per_coin}
<h2>Actual vs predicted vs persistence</h2>
{"".join(price_plots)}
<h2>Training curves</h2>
{_img(plot_histories(histories), "training curves")}
<h2>Error distribution</h2>
{_img(plot_errors(predicted_next - actual_next, today - actual_next), "error distribution")}
<h2>Hyper-parameters</h2>
{_kv_table(hparams)}
<h2>Data splits</h2>
{_kv_table(splits)}
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path
