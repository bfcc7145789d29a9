"""Fixtures: a small synthetic transform output and one quickly trained model."""

from __future__ import annotations

import pytest

from tests.components.train.synthetic import write_features

TINY_PARAMS = {
    "learning_rate": 3e-3,
    "num_layers": 1,
    "first_layer_units": 8,
    "layer_scale": 1.0,
    "dropout": 0.0,
    "batch_size": 64,
}


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
    model = model_lib.build_model(TINY_PARAMS, stats)
    model_lib.fit(model, splits["train"], splits["eval"], stats, TINY_PARAMS, epochs=3, patience=3)
    return model


@pytest.fixture(scope="session")
def trained_ensemble(splits_and_stats, trained_model):
    """``(ensemble, members)``: the fixture model averaged with a second, differently
    seeded one."""
    from components.train import model as model_lib

    splits, stats = splits_and_stats
    model_lib.seed_everything(1)
    other = model_lib.build_model(TINY_PARAMS, stats, name="other")
    model_lib.fit(other, splits["train"], splits["eval"], stats, TINY_PARAMS, epochs=3, patience=3)
    return model_lib.build_ensemble([trained_model, other]), [trained_model, other]
