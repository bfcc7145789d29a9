"""Train step: a Keras DNN regressor on the transform's features, evaluated against the
persistence baseline on the test split and exported as a TF-Serving SavedModel.

The package face: ``run`` is the step; the rest is what the tune step trains its trials
with, so a trial is the same net the train step fits. Names are imported on first use:
``check_parameters`` and ``new_version`` load neither pandas nor TensorFlow.
"""

from components.common.lazy import lazy_face

_EXPORTS = {
    "DEFAULT_HPARAMS": "components.train.model",
    "DataContractError": "components.train.data",
    "Split": "components.train.data",
    "Stats": "components.train.data",
    "TrainResult": "components.train.train",
    "build_model": "components.train.model",
    "check_parameters": "components.train.parameters",
    "fit": "components.train.model",
    "limit_threads": "components.train.model",
    "load_splits": "components.train.data",
    "load_stats": "components.train.data",
    "new_version": "components.train.parameters",
    "pinball_per_day": "components.train.scores",
    "predict_quantiles": "components.train.model",
    "quantile_summary": "components.common.quantiles",
    "ratio": "components.train.evaluate",
    "run": "components.train.train",
    "seed_everything": "components.train.model",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, globals(), _EXPORTS)
