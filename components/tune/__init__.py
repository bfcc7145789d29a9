"""Tune step: hyper-parameter search for the train step's model (local backend: Optuna)."""

from components.tune.tune import BACKENDS, SELECTIONS, TuneResult, run

__all__ = ["BACKENDS", "SELECTIONS", "TuneResult", "run"]
