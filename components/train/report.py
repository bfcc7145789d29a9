"""The train step's HTML report: metrics beside the persistence baseline, the gate
decision and plots (PNG embedded as base64, so the KFP UI renders it standalone)."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

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
    ax.plot(x, predicted, label="model", color="tab:blue", linewidth=1)
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
    ax.set_ylabel("Huber loss, standardised target")
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
    if comparison.get("dm_champion") is not None:
        tests += _dm_line(f"champion {version}", comparison["dm_champion"])
    plot = _img(plot_cumulative(comparison["dates"], comparison["errors"]), "cumulative plot")
    css = "passed" if decision.deploy else "failed"
    return f"""<h2>Challenger against persistence and the champion</h2>
<p class='{css}'><b>Decision</b>: {html.escape(decision.reason)}.</p>
<p>Compared with: {html.escape(who)}, on the same test window.</p>
<ul class='verdicts'>{lines}</ul>
<p>Diebold–Mariano test on absolute errors with the Harvey–Leybourne–Newbold correction
(H1: the model's expected absolute error is smaller):</p>
<ul class='dm'>{tests}</ul>
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


def quantile_section(forecast: Mapping) -> str:
    """The quantile scores of the model beside each baseline, with the DM p-values."""
    rows = [
        "<h2>Quantile forecast beside the baselines</h2>",
        "<table>",
        "<tr><th></th><th>pinball</th><th>ratio</th><th>DM p</th><th>coverage 50%</th>"
        "<th>width 50%</th><th>coverage 90%</th><th>width 90%</th></tr>",
    ]
    for who in ("model", "historical", "garch"):
        if who not in forecast:
            continue
        s = forecast[who]
        ratio = forecast["ratio"].get(who)
        dm = forecast["dm"].get(who)
        rows.append(
            f"<tr><td>{who}</td><td>{s['pinball']:.6f}</td>"
            f"<td>{'' if ratio is None else f'{ratio:.4f}'}</td>"
            f"<td>{'' if dm is None else f'{dm.p_value:.3f}'}</td>"
            f"<td>{s.get('coverage_50', float('nan')):.3f}</td>"
            f"<td>{s.get('width_50', float('nan')):.4f}</td>"
            f"<td>{s.get('coverage_90', float('nan')):.3f}</td>"
            f"<td>{s.get('width_90', float('nan')):.4f}</td></tr>"
        )
    rows.append("</table>")
    for who, note in forecast.get("unavailable", {}).items():
        rows.append(f"<p>{html.escape(who)} baseline unavailable: {html.escape(note)}</p>")
    return "\n".join(rows)


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
) -> Path:
    """Write the report to ``path`` (parents created) and return it. ``forecast``
    (``scores.against_baselines``), ``quantiles`` (``[rows, levels]`` log returns) and
    ``levels`` add the quantile forecast's sections."""
    ratio = evaluation["mae_ratio"]
    verdict = "PASSED" if passed_gate else "NOT PASSED"
    beats = ratio <= max_mae_ratio
    decided = f"{html.escape(comparison['decision'].reason)}. " if comparison else ""
    # The persistence comparison is its own sentence: a gate that the champion or the
    # identity rule stopped must not read as if the model had lost to persistence.
    gate = (
        f"<p class='{'passed' if passed_gate else 'failed'}'><b>Gate {verdict}</b>: {decided}"
        "Against persistence: mae_ratio = model MAE / persistence MAE = "
        f"{ratio:.4f} {'&le;' if beats else '&gt;'} max_mae_ratio {max_mae_ratio:g} "
        f"({'beats' if beats else 'does not beat'} it). "
        + ("The model will be deployed." if passed_gate else "The model will not be deployed.")
        + "</p>"
    )
    champion = comparison.get("champion") if comparison else None
    compared = comparison_section(comparison, evaluation) if comparison else ""
    lineage_html = lineage_section(lineage, hparams) if lineage else ""
    price_plots = []
    names, counts = np.unique(coins, return_counts=True)
    for coin in names[np.argsort(-counts, kind="stable")][:MAX_COINS_PLOTTED]:
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
    if len(names) > MAX_COINS_PLOTTED:
        price_plots.append(f"<p>{len(names) - MAX_COINS_PLOTTED} more coin(s) not plotted.</p>")
    per_coin = per_coin_table(coins, today, actual_next, predicted_next) if len(names) > 1 else ""
    body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(model_name)} {html.escape(version)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:1em auto}}
table{{border-collapse:collapse;margin:0.5em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
table.lineage td{{text-align:left;font-family:monospace}}
.passed{{color:#060}}.failed{{color:#a00}}</style></head><body>
<h1>Train report: {html.escape(model_name)} version {html.escape(version)}</h1>
{gate}
<h2>Test metrics beside the persistence baseline</h2>
<p>Next-day close on the test split ({len(today)} rows); persistence forecasts
tomorrow's close = today's close. MAPE in percent; directional accuracy counts "no change"
as its own direction, so persistence scores only on flat days.</p>
{_metrics_table(evaluation, champion)}
{quantile_section(forecast) if forecast else ""}
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
