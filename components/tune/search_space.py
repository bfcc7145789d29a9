"""The hyper-parameter search space, declared once.

``suggest(trial)`` samples it with Optuna; ``to_vertex_parameter_specs()`` translates it
to Vertex AI hyper-parameter tuning ``parameter_spec`` dicts (for the cloud backend).

Ranges, and why they differ from the original design (lr 0.1-0.3 log, first layer
50-500, 1-15 layers, scale 0.1-1.0): the model sees about 1,200 training rows of 15
noisy features whose best forecast is close to a constant drift.

* ``learning_rate`` 1e-4 .. 1e-2, log: Adam's useful range. 0.1-0.3 suited plain SGD on
  the old estimators; with Adam it diverges or jumps straight to noise.
* ``num_layers`` 1 .. 3: more depth has nothing to learn from 1,200 rows and
  15 layers cannot be trained reliably on them.
* ``first_layer_units`` 8 .. 128, log: 500 units is ~7,500 weights in the first
  layer alone, six per training row; small nets with L2 generalise here.
* ``layer_scale`` 0.25 .. 1.0: each layer keeps 25-100 % of the previous width
  (0.1 collapses a 3-layer net to a couple of units).
* ``dropout`` 0.0 .. 0.5: regularisation the original design did not tune.
* ``batch_size`` 32, 64, 128, 256: batch noise matters with this little data; a small
  categorical keeps the trial budget for the other dimensions.
* ``l2`` 1e-3 .. 1e-1, log: the L2 factor on every kernel (the loss is the pinball loss
  on the standardised target averaged over the quantile levels, so the data term is
  O(0.25)). From a penalty that barely
  constrains nets of this size to one that dominates the data term and shrinks the net
  towards the constant drift its output layer starts from. Tuned on the eval split like
  the rest; tune's ``one_se`` selection rule then prefers the largest ``l2`` among the
  trials the eval split cannot tell apart from the best (see ``tune.select_one_se``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ParamType = Literal["float", "int", "categorical"]


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError(f"{self.name}: a categorical parameter needs choices")
        elif self.low is None or self.high is None or not self.low <= self.high:
            raise ValueError(f"{self.name}: needs low <= high")
        elif self.log and self.low <= 0:
            raise ValueError(f"{self.name}: a log-scale range must be positive")

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        if self.type == "int" and int(value) != value:
            return False
        return self.low <= value <= self.high


SEARCH_SPACE: tuple[Param, ...] = (
    Param("learning_rate", "float", 1e-4, 1e-2, log=True),
    Param("num_layers", "int", 1, 3),
    Param("first_layer_units", "int", 8, 128, log=True),
    Param("layer_scale", "float", 0.25, 1.0),
    Param("dropout", "float", 0.0, 0.5),
    Param("batch_size", "categorical", choices=(32, 64, 128, 256)),
    Param("l2", "float", 1e-3, 1e-1, log=True),
)


def suggest(trial, space: tuple[Param, ...] = SEARCH_SPACE) -> dict[str, Any]:
    """Sample one point of ``space`` with an Optuna trial."""
    params: dict[str, Any] = {}
    for p in space:
        if p.type == "float":
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
        elif p.type == "int":
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
    return params


def validate(params: dict[str, Any], space: tuple[Param, ...] = SEARCH_SPACE) -> None:
    """Raise ValueError naming every parameter missing from or outside ``space``."""
    problems = [f"{p.name} missing" for p in space if p.name not in params]
    problems += [
        f"{p.name}={params[p.name]!r} outside the search space"
        for p in space
        if p.name in params and not p.contains(params[p.name])
    ]
    if problems:
        raise ValueError("; ".join(problems))


def to_vertex_parameter_specs(space: tuple[Param, ...] = SEARCH_SPACE) -> list[dict[str, Any]]:
    """Vertex AI ``StudySpec.ParameterSpec`` dicts (REST field names).

    float → ``double_value_spec``, int → ``integer_value_spec``, numeric categorical →
    ``discrete_value_spec``, other categorical → ``categorical_value_spec``; numeric
    specs carry ``scale_type`` (``UNIT_LOG_SCALE`` or ``UNIT_LINEAR_SCALE``).
    """
    specs: list[dict[str, Any]] = []
    for p in space:
        spec: dict[str, Any] = {"parameter_id": p.name}
        if p.type == "float":
            spec["double_value_spec"] = {"min_value": float(p.low), "max_value": float(p.high)}
        elif p.type == "int":
            spec["integer_value_spec"] = {"min_value": int(p.low), "max_value": int(p.high)}
        elif all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p.choices):
            spec["discrete_value_spec"] = {"values": sorted(float(c) for c in p.choices)}
        else:
            spec["categorical_value_spec"] = {"values": [str(c) for c in p.choices]}
        if p.type != "categorical" or "discrete_value_spec" in spec:
            spec["scale_type"] = "UNIT_LOG_SCALE" if p.log else "UNIT_LINEAR_SCALE"
        specs.append(spec)
    return specs
