"""Fixtures: a small synthetic transform output and one quickly trained model."""

from __future__ import annotations

import pytest

from components.common.quantiles import DEFAULT_QUANTILE_LEVELS, parse_quantile_levels
from tests.components.train.synthetic import write_features

LEVELS = parse_quantile_levels(DEFAULT_QUANTILE_LEVELS)

TINY_PARAMS = {
    "learning_rate": 3e-3,
    "num_layers": 1,
    "first_layer_units": 8,
    "layer_scale": 1.0,
    "dropout": 0.0,
    "batch_size": 64,
}


def train_tiny(synthetic_data, out, version: str, data_sha256: str, **kwargs):
    """Train step on the synthetic data with TINY_PARAMS, fast settings and a permissive
    persistence gate (the MAE gate unless ``gate_metric`` is given), writing
    ``out/<version>/model`` and its report; ``kwargs`` name the deploy target, its
    repository and anything else train takes."""
    from components.train.train import run as train

    kwargs.setdefault("model_name", "tiny")
    kwargs.setdefault("gate_metric", "mae")
    return train(
        *synthetic_data,
        TINY_PARAMS,
        model_path=out / version / "model",
        report_path=out / version / "report.html",
        epochs=3,
        seed=0,
        ensemble_size=1,
        max_mae_ratio=100.0,
        version=version,
        data_sha256=data_sha256,
        **kwargs,
    )


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """``(features_dir, stats_path)`` of a 400-day synthetic series."""
    return write_features(tmp_path_factory.mktemp("synthetic"), days=400, seed=0)


@pytest.fixture(scope="session")
def splits_and_stats(synthetic_data):
    from components.train.data import load_splits, load_stats

    features_dir, stats_path = synthetic_data
    return load_splits(features_dir), load_stats(stats_path)


@pytest.fixture(scope="session")
def trained_model(splits_and_stats):
    """A tiny model fitted for a few epochs (weights moved away from their start)."""
    from components.train import model as model_lib

    splits, stats = splits_and_stats
    model_lib.limit_threads()
    model_lib.seed_everything(0)
    model = model_lib.build_model(TINY_PARAMS, stats, LEVELS)
    model_lib.fit(
        model, splits["train"], splits["eval"], stats, TINY_PARAMS, LEVELS, epochs=3, patience=3
    )
    return model


@pytest.fixture(scope="session")
def trained_ensemble(splits_and_stats, trained_model):
    """``(ensemble, members)``: the fixture model averaged with a second, differently
    seeded one."""
    from components.train import model as model_lib

    splits, stats = splits_and_stats
    model_lib.seed_everything(1)
    other = model_lib.build_model(TINY_PARAMS, stats, LEVELS, name="other")
    model_lib.fit(
        other, splits["train"], splits["eval"], stats, TINY_PARAMS, LEVELS, epochs=3, patience=3
    )
    return model_lib.build_ensemble([trained_model, other]), [trained_model, other]
