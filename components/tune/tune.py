"""tune: hyper-parameter search for the train step's model.

The objective is the eval split's mean pinball (quantile) loss of the forecast quantiles
of tomorrow's log return, averaged over ``quantile_levels`` (lower is better). As a
reference it is reported beside the pinball loss of the train period's unconditional
quantiles (``np.quantile`` of the train targets at the levels, the same forecast every
eval day): a ratio below 1 means the net's conditional spread beats a constant one.

Local backend: Optuna with a seeded TPE sampler and a median pruner fed the eval pinball
loss after every epoch. Each trial trains one net as the train step does, with the same
seed, so the train step's first net reproduces the best trial (train then averages it
with nets of other seeds).
The first trial is the train step's default configuration, a known-sane reference.
The pruner waits for ``PRUNER_STARTUP_TRIALS`` finished trials and ``PRUNER_WARMUP_EPOCHS``
epochs, then stops a trial whose eval pinball loss is worse than the median of earlier
trials at the same epoch.

Which trial train gets (``selection``), decided on the eval split only:

* ``"min"``: the trial with the lowest eval pinball loss.
* ``"one_se"``: the one-standard-error rule (Breiman et al., 1984), paired. The eval
  split is a few hundred days, so small differences between trials are noise, and the
  lowest one is partly a lucky draw (the winner's curse). A trial is indistinguishable
  from the lowest when its mean row-by-row excess pinball loss over the lowest trial is
  at most one standard error of that excess; among those, the one with the largest
  ``l2`` (the most regularised) is selected, ties going to the lower loss. Daily rows
  are autocorrelated, so the SE is if anything too small and the rule errs towards the
  lowest trial.

The test split is never read here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components import train
from components.common.contracts import HPARAM_NAMES
from components.common.quantiles import DEFAULT_QUANTILE_LEVELS, parse_quantile_levels
from components.common.results import StepResult, raise_for_problems
from components.train import ratio
from components.tune.parameters import check_parameters
from components.tune.search_space import SEARCH_SPACE, suggest

log = logging.getLogger(__name__)

#: Trials that always run to the end before the pruner compares; epochs never pruned.
PRUNER_STARTUP_TRIALS = 4
PRUNER_WARMUP_EPOCHS = 5


@dataclass
class TuneResult(StepResult):
    """``best_*`` is the trial the ``selection`` rule picked (what train gets);
    ``lowest_*`` the trial with the lowest eval pinball loss (the same one under
    ``"min"``). Values are mean pinball losses on the eval split, in log-return units;
    ``baseline_eval_pinball`` is that of the train period's unconditional quantiles."""

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    baseline_eval_pinball: float
    trials_run: int
    trials_pruned: int
    trials_failed: int
    elapsed_s: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    selection: str = "min"
    lowest_trial: int = -1
    lowest_value: float = math.nan
    trials_within_one_se: int = 0
    backend: str = "optuna"
    quantile_levels: tuple[float, ...] = ()

    def metrics(self) -> dict[str, float]:
        """Numbers for a KFP Metrics artifact."""
        return {
            "best_eval_pinball": self.best_value,
            "baseline_eval_pinball": self.baseline_eval_pinball,
            "best_eval_pinball_ratio": ratio(self.best_value, self.baseline_eval_pinball),
            "lowest_eval_pinball": self.lowest_value,
            "trials_within_one_se": float(self.trials_within_one_se),
            "trials_run": float(self.trials_run),
            "trials_pruned": float(self.trials_pruned),
            "trials_failed": float(self.trials_failed),
            "elapsed_s": round(self.elapsed_s, 2),
        }

    def output_metadata(self) -> dict[str, dict[str, Any]]:
        return {
            "best_params": {
                "best_trial": self.best_trial,
                "best_eval_pinball": self.best_value,
                "selection": self.selection,
                "lowest_trial": self.lowest_trial,
                "backend": self.backend,
                "quantile_levels": ",".join(map(repr, self.quantile_levels)),
            }
        }


def within_one_se(errors: Mapping[int, np.ndarray]) -> tuple[int, dict[int, bool]]:
    """``(lowest, within)``: the trial with the lowest mean loss (ties: lower number) and,
    per trial, whether its mean row-by-row excess over that trial is at most one standard
    error of the excess. ``errors`` maps trial numbers to per-row losses (pinball, averaged
    over the levels) on the same rows."""
    if not errors:
        raise ValueError("no trial errors to compare")
    lowest = min(errors, key=lambda n: (float(np.mean(errors[n])), n))
    base = np.asarray(errors[lowest], dtype=np.float64)
    within = {}
    for n, e in errors.items():
        excess = np.asarray(e, dtype=np.float64) - base
        if excess.shape != base.shape:
            raise ValueError(f"trial {n}: {excess.size} errors, trial {lowest}: {base.size}")
        se = float(np.std(excess, ddof=1) / math.sqrt(len(excess))) if len(excess) > 1 else 0.0
        within[n] = n == lowest or float(np.mean(excess)) <= se
    return lowest, within


def select_one_se(errors: Mapping[int, np.ndarray], l2: Mapping[int, float]) -> int:
    """The one-SE rule: among the trials within one standard error of the lowest eval
    loss (``within_one_se``), the one with the largest ``l2``; ties: lower loss, then
    lower number."""
    _, within = within_one_se(errors)
    return min(
        (n for n, ok in within.items() if ok),
        key=lambda n: (-float(l2[n]), float(np.mean(errors[n])), n),
    )


def _pruning_callback(trial, target_std: float):
    """Report each epoch's eval pinball loss to Optuna (``fit`` logs it as ``val_loss`` in
    standardised units: times ``target_std`` it is in log-return units, the objective's);
    stop the trial when it is pruned."""
    import keras
    import optuna

    class Pruning(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get("val_loss")
            if value is None:
                return
            value = float(value) * target_std
            trial.report(value, step=epoch)
            if trial.should_prune():
                trial.set_user_attr("epochs", epoch + 1)
                raise optuna.TrialPruned(f"eval pinball {value:.6f} at epoch {epoch + 1}")

    return Pruning()


def historical_quantiles_pinball(
    train_split, eval_split, levels: tuple[float, ...]
) -> tuple[float, np.ndarray]:
    """The reference: mean pinball loss on ``eval_split`` (and per row) of the train
    period's unconditional quantiles, ``np.quantile`` of the train targets at ``levels``,
    forecast for every eval day."""
    constant = np.quantile(np.asarray(train_split.target, dtype=np.float64), levels)
    quantiles = np.tile(constant, (len(eval_split), 1))
    per_row = train.pinball_per_day(eval_split.target, quantiles, levels)
    return float(np.mean(per_row)), per_row


def eval_pinball(model, eval_split, levels: tuple[float, ...]) -> tuple[float, np.ndarray]:
    """``(mean, per row)`` pinball loss of ``model``'s quantiles on ``eval_split``, in
    log-return units (each row's loss averaged over ``levels``). FloatingPointError if
    the mean is not finite."""
    per_row = train.pinball_per_day(
        eval_split.target, train.predict_quantiles(model, eval_split), levels
    )
    value = float(np.mean(per_row))
    if not math.isfinite(value):
        raise FloatingPointError(f"eval pinball loss is {value}")
    return value, per_row


def run(
    features_path: str | os.PathLike,
    stats_path: str | os.PathLike,
    *,
    best_params_path: str | os.PathLike | None = None,
    trials_table_path: str | os.PathLike | None = None,
    metrics_path: str | os.PathLike | None = None,
    n_trials: int = 16,
    timeout_s: float = 600,
    max_epochs: int = 60,
    seed: int = 42,
    backend: str = "optuna",
    patience: int = 5,
    pruner_startup_trials: int = PRUNER_STARTUP_TRIALS,
    pruner_warmup_epochs: int = PRUNER_WARMUP_EPOCHS,
    selection: str = "one_se",
    parallel_trials: int = 4,
    vertex_project: str | None = None,
    vertex_region: str | None = None,
    vertex_service_account: str | None = None,
    vertex_staging_bucket: str | None = None,
    vertex_image: str | None = None,
    vertex_machine_type: str = "n1-standard-4",
    quantile_levels: str = DEFAULT_QUANTILE_LEVELS,
) -> TuneResult:
    """Search the space in ``search_space``; objective: the eval split's mean pinball loss
    of the quantiles of tomorrow's log return at ``quantile_levels`` (the train step's
    levels; see the module doc). Stops after ``n_trials`` or, between trials, after
    ``timeout_s``.
    ``selection`` (``"one_se"`` or ``"min"``, see the module doc) picks the trial whose
    parameters are returned. Reads the train and eval splits only.

    Writes the outputs it is given paths for: ``best_params_path`` (JSON of the selected
    trial's hyper-parameters, what train reads), ``trials_table_path`` (every trial as a
    Markdown table) and ``metrics_path`` (``TuneResult.metrics()`` as JSON).

    ``backend="vertex"``: a Vertex AI HyperparameterTuningJob (``components.tune.vertex``)
    runs ``n_trials`` trials, ``parallel_trials`` at a time, each a custom job on
    ``vertex_image`` (the tune image by digest) as ``vertex_service_account``; the
    outputs have the same shape and the same selection rule applies."""
    raise_for_problems(
        check_parameters(
            n_trials=n_trials,
            timeout_s=timeout_s,
            max_epochs=max_epochs,
            seed=seed,
            backend=backend,
            patience=patience,
            selection=selection,
            parallel_trials=parallel_trials,
            quantile_levels=quantile_levels,
            vertex_project=vertex_project,
            vertex_region=vertex_region,
            vertex_service_account=vertex_service_account,
            vertex_staging_bucket=vertex_staging_bucket,
            vertex_machine_type=vertex_machine_type,
            # The image is not a pipeline parameter (images.json gives it): checked here.
            vertex_image=(vertex_image or "") if backend == "vertex" else None,
        )
    )
    levels = parse_quantile_levels(quantile_levels)
    if backend == "vertex":
        from components.tune import vertex

        found = vertex.search(
            str(features_path),
            str(stats_path),
            settings=vertex.VertexSettings(
                project=vertex_project,
                region=vertex_region,
                service_account=vertex_service_account,
                staging_bucket=vertex_staging_bucket,
                image=vertex_image,
                machine_type=vertex_machine_type,
                parallel_trials=parallel_trials,
            ),
            n_trials=n_trials,
            timeout_s=timeout_s,
            max_epochs=max_epochs,
            seed=seed,
            patience=patience,
            quantile_levels=quantile_levels,
        )
        result = _vertex_result(found, selection, levels)
        _write_outputs(
            result,
            best_params_path=best_params_path,
            trials_table_path=trials_table_path,
            metrics_path=metrics_path,
        )
        return result

    import keras
    import optuna

    stats = train.load_stats(stats_path)
    splits = train.load_splits(features_path, ("train", "eval"))
    train_split, eval_split = splits["train"], splits["eval"]
    baseline, _ = historical_quantiles_pinball(train_split, eval_split, levels)
    log.info(
        "tuning on %d train / %d eval rows: %d trials, %gs budget, <= %d epochs; "
        "quantile levels %s; eval pinball of the train period's historical quantiles %.6f",
        len(train_split),
        len(eval_split),
        n_trials,
        timeout_s,
        max_epochs,
        ",".join(map(repr, levels)),
        baseline,
    )
    train.limit_threads()
    losses: dict[int, np.ndarray] = {}  # per completed trial: pinball loss per eval row

    def objective(trial) -> float:
        params = suggest(trial)
        keras.backend.clear_session()
        train.seed_everything(seed)
        model = train.build_model(params, stats, levels)
        history = train.fit(
            model,
            train_split,
            eval_split,
            stats,
            params,
            levels,
            epochs=max_epochs,
            patience=patience,
            callbacks=[_pruning_callback(trial, stats.target_std)],
            label=f"trial {trial.number}",
            log_level=logging.DEBUG,
        )
        trial.set_user_attr("epochs", len(history["loss"]))
        value, losses[trial.number] = eval_pinball(model, eval_split, levels)
        return value

    def progress(study, trial) -> None:
        shown = (
            f"{trial.value:.6f} (ratio {ratio(trial.value, baseline):.4f})"
            if trial.value is not None
            else "-"
        )
        log.info(
            "trial %d %s: eval pinball %s, %s epochs, %s",
            trial.number,
            trial.state.name.lower(),
            shown,
            trial.user_attrs.get("epochs", "?"),
            {k: _round(v) for k, v in trial.params.items()},
        )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=max(3, n_trials // 3), multivariate=True
        ),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=pruner_startup_trials, n_warmup_steps=pruner_warmup_epochs
        ),
    )
    study.enqueue_trial(dict(train.DEFAULT_HPARAMS))
    started = time.monotonic()
    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=timeout_s,
        callbacks=[progress],
        catch=(FloatingPointError,),
        gc_after_trial=True,
    )
    elapsed = time.monotonic() - started

    states = optuna.trial.TrialState
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    if not complete:
        raise RuntimeError(f"no tuning trial completed ({len(study.trials)} started); see the log")
    done = {t.number: losses[t.number] for t in complete}
    lowest, within = within_one_se(done)
    if selection == "one_se":
        chosen = select_one_se(done, {n: study.trials[n].params["l2"] for n in done})
    else:
        chosen = lowest
    best = study.trials[chosen]
    trials = [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "eval_pinball": t.value,
            "eval_pinball_ratio": ratio(t.value, baseline) if t.value is not None else None,
            "epochs": t.user_attrs.get("epochs"),
            "seconds": round(t.duration.total_seconds(), 2) if t.duration else None,
            "params": {name: t.params.get(name) for name in HPARAM_NAMES},
            "within_one_se": within.get(t.number),
        }
        for t in study.trials
    ]
    result = TuneResult(
        best_params={name: best.params[name] for name in HPARAM_NAMES},
        best_value=float(best.value),
        best_trial=best.number,
        baseline_eval_pinball=baseline,
        trials_run=len(study.trials),
        trials_pruned=sum(t.state == states.PRUNED for t in study.trials),
        trials_failed=sum(t.state == states.FAIL for t in study.trials),
        elapsed_s=elapsed,
        trials=trials,
        selection=selection,
        lowest_trial=lowest,
        lowest_value=float(study.trials[lowest].value),
        trials_within_one_se=sum(within.values()),
        backend=backend,
        quantile_levels=levels,
    )
    _write_outputs(
        result,
        best_params_path=best_params_path,
        trials_table_path=trials_table_path,
        metrics_path=metrics_path,
    )
    log.info(
        "selected trial %d (%s): eval pinball %.6f (historical quantiles %.6f, ratio %.4f); "
        "lowest: trial %d %.6f, %d within one SE of it; %d trials, %d pruned, %.1fs",
        best.number,
        selection,
        result.best_value,
        baseline,
        ratio(result.best_value, baseline),
        lowest,
        result.lowest_value,
        result.trials_within_one_se,
        result.trials_run,
        result.trials_pruned,
        elapsed,
    )
    return result


def _vertex_result(
    found: Mapping[str, Any], selection: str, levels: tuple[float, ...] = ()
) -> TuneResult:
    """The ``TuneResult`` of a Vertex AI search (``vertex.search``), with the same
    selection rule and trial rows as the Optuna backend."""
    rows, errors, baseline = found["rows"], found["errors"], found["baseline"]
    if not errors:
        raise RuntimeError(f"no Vertex AI tuning trial succeeded ({len(rows)} ran); see the log")
    lowest, within = within_one_se(errors)
    chosen = select_one_se(errors, found["l2"]) if selection == "one_se" else lowest
    trials = [
        {
            **r,
            "eval_pinball_ratio": ratio(r["eval_pinball"], baseline)
            if r["eval_pinball"] is not None
            else None,
            "within_one_se": within.get(r["number"]),
        }
        for r in rows
    ]
    best = next(t for t in trials if t["number"] == chosen)
    value = {t["number"]: t["eval_pinball"] for t in trials}
    return TuneResult(
        best_params=dict(best["params"]),
        best_value=float(best["eval_pinball"]),
        best_trial=chosen,
        baseline_eval_pinball=baseline,
        trials_run=len(trials),
        trials_pruned=sum(t["state"] == "pruned" for t in trials),
        trials_failed=sum(t["state"] == "fail" for t in trials),
        elapsed_s=found["elapsed_s"],
        trials=trials,
        selection=selection,
        lowest_trial=lowest,
        lowest_value=float(value[lowest]),
        trials_within_one_se=sum(within.values()),
        backend="vertex",
        quantile_levels=tuple(levels),
    )


def train_trial(
    features_path: str | os.PathLike,
    stats_path: str | os.PathLike,
    params: Mapping[str, Any],
    *,
    max_epochs: int,
    seed: int,
    patience: int,
    quantile_levels: str = DEFAULT_QUANTILE_LEVELS,
) -> tuple[float, list[float], int, float]:
    """Train one configuration as an Optuna trial does (without its pruner): ``(eval
    pinball, pinball loss per eval row, epochs, eval pinball of the train period's
    historical quantiles)``. Vertex AI trials run this."""
    import keras

    levels = parse_quantile_levels(quantile_levels)
    stats = train.load_stats(stats_path)
    splits = train.load_splits(features_path, ("train", "eval"))
    train_split, eval_split = splits["train"], splits["eval"]
    train.limit_threads()
    keras.backend.clear_session()
    train.seed_everything(seed)
    model = train.build_model(dict(params), stats, levels)
    history = train.fit(
        model,
        train_split,
        eval_split,
        stats,
        dict(params),
        levels,
        epochs=max_epochs,
        patience=patience,
        label="trial",
        log_level=logging.INFO,
    )
    value, per_row = eval_pinball(model, eval_split, levels)
    baseline, _ = historical_quantiles_pinball(train_split, eval_split, levels)
    return value, [float(e) for e in per_row], len(history["loss"]), baseline


def _round(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) else value


def trials_markdown(result: TuneResult) -> str:
    """All trials as a Markdown table: completed trials lowest eval pinball loss first,
    then the pruned (their value is the last one reported before pruning), then the
    failed. The selected trial (the one train gets) is marked, and so is the lowest."""
    names = [p.name for p in SEARCH_SPACE]
    rule = {
        "one_se": "the largest l2 among the trials within one standard error of the lowest "
        "eval pinball",
        "min": "the lowest eval pinball",
    }.get(result.selection, result.selection)
    levels = ", ".join(map(repr, result.quantile_levels)) or "?"
    lines = [
        "# Hyper-parameter trials",
        "",
        f"Objective: eval pinball, the eval split's mean pinball loss over the quantile "
        f"levels {levels} of tomorrow's log return (lower is better). The train period's "
        f"historical quantiles on the same rows: **{result.baseline_eval_pinball:.6f}**. "
        f"Selected ({rule}): trial {result.best_trial}, **{result.best_value:.6f}** "
        f"(ratio {ratio(result.best_value, result.baseline_eval_pinball):.4f}); lowest: "
        f"trial {result.lowest_trial}, {result.lowest_value:.6f}. "
        f"{result.trials_run} trials, {result.trials_pruned} pruned, "
        f"{result.trials_failed} failed, "
        f"{result.elapsed_s:.1f} s.",
        "",
        "| trial | state | eval pinball | ratio to historical quantiles | within 1 SE | epochs "
        "| seconds | " + " | ".join(names) + " |",
        "|---:|---|---:|---:|---|---:|---:|" + "---:|" * len(names),
    ]
    rank = {"complete": 0, "pruned": 1}
    ordered = sorted(
        result.trials,
        key=lambda t: (rank.get(t["state"], 2), t["eval_pinball"] or 0.0, t["number"]),
    )
    for t in ordered:
        value = "-" if t["eval_pinball"] is None else f"{t['eval_pinball']:.6f}"
        ratio_text = "-" if t["eval_pinball_ratio"] is None else f"{t['eval_pinball_ratio']:.4f}"
        marks = [
            m
            for m, n in (("selected", result.best_trial), ("lowest", result.lowest_trial))
            if t["number"] == n
        ]
        mark = f" ({', '.join(marks)})" if marks else ""
        one_se = {True: "yes", False: "no"}.get(t.get("within_one_se"), "-")
        cells = [_cell(t["params"].get(n)) for n in names]
        lines.append(
            f"| {t['number']}{mark} | {t['state']} | {value} | {ratio_text} | {one_se} "
            f"| {t['epochs'] or '-'} | "
            f"{t['seconds'] if t['seconds'] is not None else '-'} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _write_outputs(result: TuneResult, **paths: str | os.PathLike | None) -> None:
    """The outputs given a path: best_params JSON (the selected trial's hyper-parameters,
    keyed by ``contracts.HPARAM_NAMES``), the Markdown trials table, the metrics JSON."""
    texts = {
        "best_params_path": lambda: json.dumps(result.best_params, indent=2) + "\n",
        "trials_table_path": lambda: trials_markdown(result),
        "metrics_path": lambda: json.dumps(result.metrics(), indent=2) + "\n",
    }
    for name, path in paths.items():
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(texts[name](), encoding="utf-8")
