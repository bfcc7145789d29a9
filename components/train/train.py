"""train: fit the DNN with the tuned hyper-parameters, evaluate it on the test split
beside the persistence baseline, export the serving SavedModel and decide the gate."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.common.contracts import (
    DEFAULT_MODEL_NAME,
    DEFAULT_SERVING_NAMESPACE,
    OUTPUT_NAME,
    QUANTILES_NAME,
)
from components.common.jsonfile import read_json
from components.common.quantiles import (
    DEFAULT_GATE_METRIC,
    DEFAULT_QUANTILE_LEVELS,
    GATE_INTERVAL,
    INTERVALS,
    parse_quantile_levels,
    quantile_summary,
)
from components.common.results import StepResult, raise_for_problems
from components.train import model as model_lib
from components.train.baselines import baselines as quantile_baselines
from components.train.champion import (
    find_champion,
    is_identical,
    settings_problems,
    training_fingerprint,
)
from components.train.data import load_splits, load_stats
from components.train.evaluate import METRIC_NAMES, evaluate, flat_metrics, price_metrics, ratio
from components.train.export import export_serving_model, load_serving_fn
from components.train.gate import decide, decide_quantile, diebold_mariano
from components.train.parameters import check_parameters, new_version
from components.train.report import write_report
from components.train.scores import against_baselines, flat_quantile_metrics, pinball_per_day

log = logging.getLogger(__name__)

#: The exported model must reproduce the in-memory predictions to float32 precision.
EXPORT_TOLERANCE = 1e-6


@dataclass
class TrainResult(StepResult):
    scores: dict[str, float]  #: test metrics beside persistence, the gate, training facts
    passed_gate: bool
    mae_ratio: float
    max_mae_ratio: float
    export_path: Path
    version: str
    report_path: Path
    hparams: dict[str, float | int]
    histories: list[dict[str, list[float]]] = field(repr=False)
    gate_outcome: str = ""
    gate_reason: str = ""
    champion_version: str | None = None
    data_sha256: str = ""
    training_fingerprint: str = ""
    quantile_levels: tuple[float, ...] = ()
    garch_unavailable: str = ""  #: why the GARCH baseline could not be fitted, if so

    def metrics(self) -> dict[str, float]:
        return dict(self.scores)

    def output_metadata(self) -> dict[str, dict]:
        return {
            "model": {
                "version": self.version,
                "mae_ratio": self.mae_ratio,
                "passed_gate": self.passed_gate,
                "max_mae_ratio": self.max_mae_ratio,
                "model_mae": self.scores["model_mae"],
                "baseline_mae": self.scores["baseline_mae"],
                # Recorded by deploy with the version: what makes the next run's champion.
                "data_sha256": self.data_sha256,
                "training_fingerprint": self.training_fingerprint,
                "hparams": json.dumps(self.hparams, sort_keys=True),
                "gate_outcome": self.gate_outcome,
                "gate_reason": self.gate_reason,
                "champion_version": self.champion_version or "",
                "quantile_levels": ",".join(map(repr, self.quantile_levels)),
                "pinball_ratio": self.scores.get("pinball_ratio", float("nan")),
                "coverage_90": self.scores.get("model_coverage_90", float("nan")),
                "garch_unavailable": self.garch_unavailable,
            }
        }


def read_params(
    best_params: Mapping[str, object] | str | os.PathLike | None,
) -> dict[str, float | int]:
    """Hyper-parameters from a dict or a JSON file (tune's ``best_params``), validated;
    None gives the defaults."""
    if best_params is None:
        return model_lib.validate_hparams({})
    if isinstance(best_params, Mapping):
        return model_lib.validate_hparams(best_params)
    path = Path(best_params)
    params = read_json(path, "best_params")
    if not isinstance(params, dict):
        raise ValueError(
            f"best_params file {path} must hold a JSON object, got {type(params).__name__}"
        )
    return model_lib.validate_hparams(params)


def run(
    features_path: str | os.PathLike,
    stats_path: str | os.PathLike,
    best_params: Mapping[str, object] | str | os.PathLike | None = None,
    *,
    model_path: str | os.PathLike,
    report_path: str | os.PathLike,
    metrics_path: str | os.PathLike | None = None,
    epochs: int = 200,
    seed: int = 42,
    ensemble_size: int = 5,
    max_mae_ratio: float = 1.0,
    model_name: str = DEFAULT_MODEL_NAME,
    version: str | None = None,
    patience: int = 5,
    model_repository: str | None = None,
    deploy_target: str | None = None,
    min_improvement: float = 0.0,
    significance: float = 0.05,
    data_sha256: str | None = None,
    lineage: Mapping[str, object] | None = None,
    serving_namespace: str = DEFAULT_SERVING_NAMESPACE,
    vertex_project: str | None = None,
    vertex_region: str | None = None,
    vertex_endpoint: str | None = None,
    kubeconfig: str | None = None,
    vertex_api_endpoint: str | None = None,
    quantile_levels: str = DEFAULT_QUANTILE_LEVELS,
    gate_metric: str = DEFAULT_GATE_METRIC,
    coverage_tolerance: float = 0.05,
) -> TrainResult:
    """Train ``ensemble_size`` nets (seeds ``seed``, ``seed+1``, ...) with early stopping
    on eval, average them into one model, evaluate it on the test split, export it to
    ``<model_path>/<version>/``, write the report to ``report_path`` and, when given, the
    metrics JSON to ``metrics_path``. ``best_params``: tune's JSON file or a dict (None:
    the defaults).

    ``ensemble_size`` (default 5) is fixed a priori, not tuned: the members differ only in
    their seed (initial weights, dropout masks, batch order), so averaging n of them keeps
    their expected prediction and divides the seed-to-seed variance by about n. 5 removes
    ~80% of that variance; 10 would remove ~90% at twice the training cost. No split's
    score was used to pick it. The first member (seed ``seed``) is tune's selected trial.

    The model forecasts quantiles of tomorrow's log return at ``quantile_levels`` (its
    median is the point forecast); it is scored on the test split beside persistence
    (point), historical quantiles and GARCH(1,1)-t (``components.train.baselines``).

    The gate, ``gate_metric="pinball"`` (``gate.decide_quantile``): the mean pinball loss
    is below the historical-quantile baseline's with a Diebold–Mariano p-value below
    ``significance``, the 90% interval covers 0.90 of the test days within
    ``coverage_tolerance``, and the champion (below) is beaten on pinball loss.
    ``gate_metric="mae"`` (``gate.decide``): ``mae_ratio = model MAE / persistence MAE <=
    max_mae_ratio``. Either way, if ``deploy_target`` serves a champion from
    ``model_repository`` (``find_champion``), the model must also beat it on the same test
    window by ``min_improvement`` with a Diebold–Mariano p-value below ``significance``.
    A model identical to the champion (same ``data_sha256``, hyper-parameters and seed)
    never passes. The model is exported either way (deploy decides on the gate).
    ``lineage`` (run id, git revision, images) goes into the report.

    The champion's look-up reads the deploy target's settings (the deploy step's
    parameters of the same names): ``serving_namespace`` (gke; ``kubeconfig``: else
    ``$KUBECONFIG``, else in-cluster), ``vertex_project``, ``vertex_region`` and
    ``vertex_endpoint`` (vertex; ``vertex_api_endpoint`` points the client elsewhere, for
    tests). They are checked before training.
    """
    raise_for_problems(
        check_parameters(
            epochs=epochs,
            seed=seed,
            ensemble_size=ensemble_size,
            max_mae_ratio=max_mae_ratio,
            model_name=model_name,
            version=version,
            patience=patience,
            min_improvement=min_improvement,
            significance=significance,
            quantile_levels=quantile_levels,
            gate_metric=gate_metric,
            coverage_tolerance=coverage_tolerance,
        )
    )
    levels = parse_quantile_levels(quantile_levels)
    median = levels.index(0.5)
    champion_settings = {
        "serving_namespace": serving_namespace,
        "kubeconfig": kubeconfig,
        "vertex_project": vertex_project,
        "vertex_region": vertex_region,
        "vertex_endpoint": vertex_endpoint,
        "vertex_api_endpoint": vertex_api_endpoint,
    }
    raise_for_problems(settings_problems(deploy_target, model_repository, champion_settings))
    version = str(version) if version is not None else new_version()
    hparams = read_params(best_params)
    stats = load_stats(stats_path)
    splits = load_splits(features_path)
    train_split, eval_split, test_split = splits["train"], splits["eval"], splits["test"]
    log.info(
        "train %d rows, eval %d, test %d; hyper-parameters %s",
        len(train_split),
        len(eval_split),
        len(test_split),
        hparams,
    )

    started = time.monotonic()
    model_lib.limit_threads()
    members, histories = [], []
    for i in range(ensemble_size):
        model_lib.seed_everything(seed + i)
        member = model_lib.build_model(hparams, stats, levels, name=f"member_{i}")
        histories.append(
            model_lib.fit(
                member,
                train_split,
                eval_split,
                stats,
                hparams,
                levels,
                epochs=epochs,
                patience=patience,
                label=f"net {i + 1}/{ensemble_size}",
            )
        )
        members.append(member)
    model = model_lib.build_ensemble(members)
    fit_seconds = time.monotonic() - started

    quantiles = model_lib.predict_quantiles(model, test_split)
    predicted = quantiles[:, median]
    evaluation = evaluate(test_split.close, test_split.target, predicted)
    mae_ratio = float(evaluation["mae_ratio"])
    forecast = against_baselines(
        test_split.target, quantiles, quantile_baselines(splits, levels), levels
    )

    export_path = export_serving_model(model, model_path, version, levels)
    served = load_serving_fn(export_path).outputs(test_split.features)
    worst = max(
        float(np.max(np.abs(served[OUTPUT_NAME] - predicted))),
        float(np.max(np.abs(served[QUANTILES_NAME] - quantiles))),
    )
    if worst > EXPORT_TOLERANCE:
        raise RuntimeError(
            f"exported model at {export_path} disagrees with the trained one by {worst:g}"
        )

    # What the nets were fitted to beyond the raw bytes: the coins and the split dates.
    fingerprint = training_fingerprint(
        hparams,
        seed=seed,
        ensemble_size=ensemble_size,
        epochs=epochs,
        patience=patience,
        splits={n: [str(s.dates[0]), str(s.dates[-1]), len(s)] for n, s in splits.items()},
        coins=sorted(map(str, set(test_split.coins))),
        quantile_levels=list(levels),
    )
    with tempfile.TemporaryDirectory(prefix="champion-") as cache_dir:
        champion = (
            find_champion(
                model_repository,
                model_name,
                deploy_target,
                {**champion_settings, "cache_dir": cache_dir},
            )
            if deploy_target
            else None
        )
        comparison = compare(
            test_split,
            predicted,
            evaluation,
            champion,
            data_sha256=data_sha256 or "",
            fingerprint=fingerprint,
            gate={
                "metric": gate_metric,
                "max_mae_ratio": max_mae_ratio,
                "min_improvement": min_improvement,
                "significance": significance,
                "coverage_tolerance": coverage_tolerance,
            },
            forecast=forecast,
            levels=levels,
        )
    decision = comparison["decision"]
    passed = decision.deploy

    eval_quantiles = model_lib.predict_quantiles(model, eval_split)
    eval_evaluation = evaluate(eval_split.close, eval_split.target, eval_quantiles[:, median])
    metrics = {
        **flat_metrics(evaluation),
        **flat_quantile_metrics(forecast),
        "eval_pinball": float(np.mean(pinball_per_day(eval_split.target, eval_quantiles, levels))),
        "coverage_tolerance": float(coverage_tolerance),
        "max_mae_ratio": float(max_mae_ratio),
        "passed_gate": float(passed),
        "eval_mae_ratio": float(eval_evaluation["mae_ratio"]),
        "ensemble_size": float(ensemble_size),
        "mean_epochs_run": float(np.mean([len(h["loss"]) for h in histories])),
        "mean_best_epoch": float(np.mean([int(np.argmin(h["val_loss"])) + 1 for h in histories])),
        "train_rows": float(len(train_split)),
        "eval_rows": float(len(eval_split)),
        "test_rows": float(len(test_split)),
        "fit_seconds": round(fit_seconds, 2),
        **comparison["metrics"],
    }
    report = write_report(
        report_path,
        model_name=model_name,
        version=version,
        evaluation=evaluation,
        passed_gate=passed,
        max_mae_ratio=max_mae_ratio,
        comparison=comparison,
        lineage={
            "data SHA-256": data_sha256 or "unknown",
            **{str(k): v for k, v in (lineage or {}).items()},
            "model version": version,
            "training fingerprint": fingerprint,
        },
        histories=histories,
        hparams={
            **hparams,
            "ensemble_size": ensemble_size,
            "seeds": f"{seed}..{seed + ensemble_size - 1}",
        },
        splits={
            name: f"{s.dates[0]} .. {s.dates[-1]} ({len(s)} rows)" for name, s in splits.items()
        },
        coins=test_split.coins,
        dates=test_split.dates,
        today=test_split.close,
        actual_next=test_split.next_close(),
        predicted_next=test_split.close * np.exp(predicted),
        forecast=forecast,
        quantiles=quantiles,
        levels=levels,
        coverage_tolerance=coverage_tolerance,
    )
    log.info(
        "test MAE model %.4f vs persistence %.4f: mae_ratio %.4f",
        evaluation["model"]["mae"],
        evaluation["baseline"]["mae"],
        mae_ratio,
    )
    log.info("%s", quantile_summary(metrics))
    log.info("gate (%s): %s", gate_metric, decision.reason)
    if metrics_path is not None:
        Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_path).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return TrainResult(
        scores=metrics,
        passed_gate=passed,
        mae_ratio=mae_ratio,
        max_mae_ratio=float(max_mae_ratio),
        export_path=export_path,
        version=version,
        report_path=report,
        hparams=hparams,
        histories=histories,
        gate_outcome=decision.outcome,
        gate_reason=decision.reason,
        champion_version=comparison["champion_version"],
        data_sha256=data_sha256 or "",
        training_fingerprint=fingerprint,
        quantile_levels=levels,
        garch_unavailable=forecast["unavailable"].get("garch", ""),
    )


def compare(
    test_split,
    predicted: np.ndarray,
    evaluation: Mapping,
    champion,
    *,
    data_sha256: str,
    fingerprint: str,
    gate: Mapping[str, object],
    forecast: Mapping,
    levels: tuple[float, ...],
) -> dict:
    """Score persistence and the champion (if any, and if it can be scored on this test
    window) beside the challenger; the Diebold–Mariano tests; the gate's decision.

    ``gate``: ``metric`` ("pinball" or "mae"), ``max_mae_ratio``, ``min_improvement``,
    ``significance``, ``coverage_tolerance``. ``forecast``: ``scores.against_baselines``
    of the challenger's quantiles."""
    metric = str(gate["metric"])
    significance = float(gate["significance"])
    min_improvement = float(gate["min_improvement"])
    today = np.asarray(test_split.close, dtype=np.float64)
    actual = test_split.next_close()
    errors = {"model": today * np.exp(predicted) - actual, "persistence": today - actual}
    champion_eval, champion_pinball, note = None, None, ""
    if champion is not None:
        try:
            served = load_serving_fn(champion.path)
            answer = served.outputs(test_split.features)
            champion_next = today * np.exp(answer[OUTPUT_NAME])
            if metric == "pinball":
                if served.levels is None or tuple(served.levels) != tuple(levels):
                    raise ValueError(
                        f"its quantile levels {served.levels} are not this run's {list(levels)}"
                    )
                champion_pinball = pinball_per_day(
                    test_split.target, answer[QUANTILES_NAME], levels
                )
            errors["champion"] = champion_next - actual
            champion_eval = price_metrics(today, actual, champion_next)
        except Exception as exc:  # a champion of another feature contract, a broken folder
            note = f"champion {champion.version} could not be scored on this data ({exc})"
            log.warning("%s: the baselines decide", note)
            champion = None
    dm_baseline = diebold_mariano(errors["model"], errors["persistence"])
    if metric == "pinball":
        losses = forecast["pinball"]["model"]
        dm_champion = diebold_mariano(losses, champion_pinball) if champion else None
        champion_ratio = (
            ratio(float(np.mean(losses)), float(np.mean(champion_pinball))) if champion else None
        )
    else:
        dm_champion = diebold_mariano(errors["model"], errors["champion"]) if champion else None
        champion_ratio = (
            ratio(evaluation["model"]["mae"], champion_eval["mae"]) if champion_eval else None
        )
    identical = champion is not None and is_identical(champion, data_sha256, fingerprint)
    if metric == "pinball":
        lower, upper = INTERVALS[GATE_INTERVAL]
        decision = decide_quantile(
            pinball_ratio=float(forecast["ratio"]["historical"]),
            dm_baseline=forecast["dm"]["historical"],
            coverage=float(forecast["model"][f"coverage_{GATE_INTERVAL}"]),
            nominal=upper - lower,
            coverage_tolerance=float(gate["coverage_tolerance"]),
            champion_version=champion.version if champion else None,
            identical=identical,
            champion_pinball_ratio=champion_ratio,
            dm_champion=dm_champion,
            min_improvement=min_improvement,
            significance=significance,
        )
    else:
        decision = decide(
            mae_ratio=float(evaluation["mae_ratio"]),
            max_mae_ratio=float(gate["max_mae_ratio"]),
            champion_version=champion.version if champion else None,
            identical=identical,
            champion_mae_ratio=champion_ratio,
            dm_champion=dm_champion,
            min_improvement=min_improvement,
            significance=significance,
        )
    if note:
        decision = type(decision)(decision.deploy, decision.outcome, f"{decision.reason} ({note})")
    metrics = {
        "dm_baseline_statistic": dm_baseline.statistic,
        "dm_baseline_p_value": dm_baseline.p_value,
        "has_champion": float(champion is not None),
        "min_improvement": min_improvement,
        "significance": significance,
        "gate_pinball": float(metric == "pinball"),
    }
    if champion_eval is not None and dm_champion is not None:
        metrics |= {f"champion_{name}": champion_eval[name] for name in METRIC_NAMES}
        metrics |= {
            "champion_mae_ratio": ratio(evaluation["model"]["mae"], champion_eval["mae"]),
            "dm_champion_statistic": dm_champion.statistic,
            "dm_champion_p_value": dm_champion.p_value,
            "identical_to_champion": float(identical),
        }
        if champion_pinball is not None:
            metrics["champion_pinball"] = float(np.mean(champion_pinball))
            metrics["champion_pinball_ratio"] = float(champion_ratio)
    return {
        "decision": decision,
        "metric": metric,
        "champion_version": champion.version if champion else None,
        "champion": champion_eval,
        "dm_baseline": dm_baseline,
        "dm_champion": dm_champion,
        "errors": errors,
        "dates": np.asarray(test_split.dates),
        "metrics": metrics,
    }
