"""Train step: a Keras DNN regressor on the transform's features, evaluated against the
persistence baseline on the test split and exported as a TF-Serving SavedModel.

The package face: ``run`` is the step; the rest is what the tune step trains its trials
with, so a trial is the same net the train step fits.
"""

from components.train.data import DataContractError, Split, Stats, load_splits, load_stats
from components.train.evaluate import ratio
from components.train.model import (
    DEFAULT_HPARAMS,
    build_model,
    fit,
    limit_threads,
    predict_log_return,
    seed_everything,
)
from components.train.train import TrainResult, new_version, run

__all__ = [
    "DEFAULT_HPARAMS",
    "DataContractError",
    "Split",
    "Stats",
    "TrainResult",
    "build_model",
    "fit",
    "limit_threads",
    "load_splits",
    "load_stats",
    "new_version",
    "predict_log_return",
    "ratio",
    "run",
    "seed_everything",
]
