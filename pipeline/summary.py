"""The end-of-run summary of a local pipeline run, as plain text."""

from __future__ import annotations

import math
from typing import Any

from components.images import STEPS
from pipeline.local import LocalRunResult


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return str(value)


def metric_pairs(metrics: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(name, model value, baseline value) for every metric that has a baseline."""
    pairs = []
    for key in sorted(metrics):
        if key.startswith("baseline_"):
            name = key.removeprefix("baseline_")
            model = metrics.get(f"model_{name}", metrics.get(name))
            if model is not None:
                pairs.append((name, model, metrics[key]))
    return pairs


#: The train metrics that show a quantile forecast was scored (``quantile_summary``).
QUANTILE_KEYS = ("pinball_ratio", "model_pinball", "model_coverage_90")
#: Where the train step's model metadata gives the reason a baseline was unavailable.
GARCH_NOTE_KEY = "garch_unavailable"


def quantile_lines(metrics: dict[str, Any], model_meta: dict[str, Any]) -> list[str]:
    """The quantile forecast's fixed-format line (``components.train.quantile_summary``)
    and, when GARCH(1,1)-t could not be scored, a line saying so with the reason if the
    train step recorded one. Nothing for a run without quantile scores."""
    if not any(key in metrics for key in QUANTILE_KEYS):
        return []
    from components.train import quantile_summary

    lines = [quantile_summary(metrics)]
    garch_missing = "garch_pinball_ratio" not in metrics or not metrics.get("garch_available", 1.0)
    if garch_missing:
        note = model_meta.get(GARCH_NOTE_KEY) or metrics.get(GARCH_NOTE_KEY)
        lines.append(
            "GARCH(1,1)-t baseline unavailable"
            + (f": {note}" if isinstance(note, str) and note else " (see the report)")
        )
    return lines


def format_summary(result: LocalRunResult) -> str:
    lines = ["", "Run summary", "-----------"]
    lines.append(f"{'step':<10} {'status':<10} {'wall time':>10}")
    for step in STEPS:
        record = result.steps[step]
        wall = f"{record.seconds:8.1f} s" if record.seconds else "        -"
        lines.append(f"{step:<10} {record.status:<10} {wall:>10}")
    lines.append(f"{'total':<10} {'':<10} {result.wall_seconds:8.1f} s")

    failed = result.failed_step
    if failed is not None:
        lines += ["", f"FAILED at step '{failed.step}'. Its last output lines:"]
        lines += [f"    {line}" for line in failed.output_tail[-12:]]
        return "\n".join(lines)

    warnings = (result.artifact("transform", "stats") or {}).get("metadata", {}).get("warnings")
    if warnings:
        lines += ["", "Transform warnings:"]
        lines += [f"  warning: {warning}" for warning in warnings]

    train_metrics = (result.artifact("train", "metrics") or {}).get("metadata", {})
    pairs = metric_pairs(train_metrics)
    if pairs:
        lines += ["", "Test-split metrics (price), model beside the persistence baseline:"]
        lines.append(f"  {'metric':<24} {'model':>14} {'baseline':>14}")
        for name, model, baseline in pairs:
            lines.append(f"  {name:<24} {_fmt(model):>14} {_fmt(baseline):>14}")
        if any(name == "directional_accuracy" for name, _, _ in pairs):
            lines.append(
                '  (persistence always predicts "no change", so its directional '
                "accuracy is ~0 by construction)"
            )

    ratio = train_metrics.get("mae_ratio")
    threshold = result.arguments.get("max_mae_ratio", 1.0)
    passed = result.parameter("train")
    model_meta = (result.artifact("train", "model") or {}).get("metadata", {})
    reason = model_meta.get("gate_reason")
    lines.append("")
    if "champion_mae" in train_metrics:
        lines.append(
            f"Champion {model_meta.get('champion_version', '?')}: test MAE "
            f"{_fmt(train_metrics['champion_mae'])}, challenger/champion MAE "
            f"{_fmt(train_metrics.get('champion_mae_ratio'))}, Diebold-Mariano DM* "
            f"{_fmt(train_metrics.get('dm_champion_statistic'))} "
            f"(p {_fmt(train_metrics.get('dm_champion_p_value'))})"
        )
    if ratio is not None:
        beats = ratio <= threshold
        lines.append(
            f"Against persistence: mae_ratio {_fmt(ratio)} {'<=' if beats else '>'} "
            f"max_mae_ratio {_fmt(threshold)} ({'beats' if beats else 'does not beat'} it)"
        )
    lines += quantile_lines(train_metrics, model_meta)
    if passed:
        lines.append("Gate: PASSED")
    else:
        # The decision line below says why: persistence, the champion, the test or identity.
        lines.append("Gate: NOT PASSED; the model was NOT deployed. The run itself succeeded.")
    if reason:
        lines.append(f"Gate decision: {reason}")
    if result.steps["deploy"].status == "SKIPPED":
        lines.append(
            "Deploy: skipped, nothing deployed; the repository's CURRENT and deployment "
            "records are unchanged."
        )

    report = result.artifact("train", "report")
    if report:
        lines.append(f"Report:   {report.get('html') or report['uri']}")
    deployment = result.artifact("deploy", "deployment")
    if deployment:
        meta = deployment.get("metadata", {})
        where = meta.get("path") or meta.get("published_path") or deployment["uri"]
        version = meta.get("version", "?")
        lines.append(f"Deployed: version {version} at {where}")
        model_name = result.arguments.get("model_name", "btc-forecast")
        repo = result.arguments.get("model_repository", "")
        lines.append(
            f"Serve it: python -m components.deploy serve --model-repository {repo} "
            f"--model-name {model_name}"
        )
    if result.run_dir:
        lines.append(f"Outputs:  {result.run_dir}")
    return "\n".join(lines)
