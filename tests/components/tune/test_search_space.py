"""The declarative search space: sampling stays in bounds; Vertex AI translation."""

import optuna
import pytest

from components.common.contracts import HPARAM_NAMES
from components.train.model import DEFAULT_HPARAMS, validate_hparams
from components.tune.search_space import (
    SEARCH_SPACE,
    Param,
    suggest,
    to_vertex_parameter_specs,
    validate,
)

PARAM_NAMES = tuple(p.name for p in SEARCH_SPACE)


def test_space_covers_exactly_the_model_hyper_parameters():
    assert PARAM_NAMES == HPARAM_NAMES
    # the original six keys stay; l2 is tuned too
    assert set(PARAM_NAMES) == {
        "learning_rate",
        "num_layers",
        "first_layer_units",
        "layer_scale",
        "dropout",
        "batch_size",
        "l2",
    }
    validate(DEFAULT_HPARAMS)  # the default (first trial) lies inside the space


def test_l2_is_a_log_scale_range():
    l2 = {p.name: p for p in SEARCH_SPACE}["l2"]
    assert (l2.type, l2.low, l2.high, l2.log) == ("float", 1e-3, 1e-1, True)
    # the default (tune's first trial, an a-priori choice: light L2, as the quantile head
    # does most of the work) lies in the range
    assert l2.low <= DEFAULT_HPARAMS["l2"] <= l2.high


@pytest.mark.parametrize(
    "sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)]
)
def test_sampled_params_respect_the_bounds(sampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    seen = {name: set() for name in PARAM_NAMES}
    for i in range(60):
        trial = study.ask()
        params = suggest(trial)
        validate(params)
        validate_hparams(params)  # and the model accepts them
        assert isinstance(params["num_layers"], int) and isinstance(
            params["first_layer_units"], int
        )
        for name, value in params.items():
            seen[name].add(value)
        study.tell(trial, float(i % 7))
    spec = {p.name: p for p in SEARCH_SPACE}
    assert seen["batch_size"] <= set(spec["batch_size"].choices)
    assert len(seen["num_layers"]) > 1 and len(seen["learning_rate"]) > 30
    assert len(seen["l2"]) > 30 and all(1e-3 <= v <= 1e-1 for v in seen["l2"])
    if isinstance(sampler, optuna.samplers.RandomSampler):
        # log scale: about as many draws below the geometric middle (1e-2) as above it
        assert 15 < sum(v < 1e-2 for v in seen["l2"]) < 45


def test_validate_names_the_problem():
    with pytest.raises(ValueError, match=r"batch_size missing; learning_rate=0\.5 outside"):
        validate(
            {
                **{k: v for k, v in DEFAULT_HPARAMS.items() if k != "batch_size"},
                "learning_rate": 0.5,
            }
        )


def test_vertex_parameter_specs():
    specs = {s["parameter_id"]: s for s in to_vertex_parameter_specs()}
    assert set(specs) == set(PARAM_NAMES)
    assert specs["learning_rate"] == {
        "parameter_id": "learning_rate",
        "double_value_spec": {"min_value": 1e-4, "max_value": 1e-2},
        "scale_type": "UNIT_LOG_SCALE",
    }
    assert specs["num_layers"] == {
        "parameter_id": "num_layers",
        "integer_value_spec": {"min_value": 1, "max_value": 3},
        "scale_type": "UNIT_LINEAR_SCALE",
    }
    assert specs["first_layer_units"]["scale_type"] == "UNIT_LOG_SCALE"
    assert specs["l2"] == {
        "parameter_id": "l2",
        "double_value_spec": {"min_value": 1e-3, "max_value": 1e-1},
        "scale_type": "UNIT_LOG_SCALE",
    }
    assert specs["batch_size"] == {
        "parameter_id": "batch_size",
        "discrete_value_spec": {"values": [32.0, 64.0, 128.0, 256.0]},
        "scale_type": "UNIT_LINEAR_SCALE",
    }
    # every spec has exactly one value spec
    for spec in specs.values():
        assert sum(k.endswith("_value_spec") for k in spec) == 1


def test_non_numeric_categorical_and_bad_specs():
    (spec,) = to_vertex_parameter_specs((Param("act", "categorical", choices=("relu", "tanh")),))
    assert spec == {"parameter_id": "act", "categorical_value_spec": {"values": ["relu", "tanh"]}}
    with pytest.raises(ValueError, match="log-scale"):
        Param("x", "float", 0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="low <= high"):
        Param("x", "int", 3, 1)
    with pytest.raises(ValueError, match="needs choices"):
        Param("x", "categorical")
