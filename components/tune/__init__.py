"""Tune step: hyper-parameter search for the train step's model (local backend: Optuna).

Names are imported on first use: ``check_parameters`` loads no training code."""

from components.common.lazy import lazy_face

_EXPORTS = {
    "BACKENDS": "components.tune.parameters",
    "SELECTIONS": "components.tune.parameters",
    "TuneResult": "components.tune.tune",
    "check_parameters": "components.tune.parameters",
    "run": "components.tune.tune",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, globals(), _EXPORTS)
