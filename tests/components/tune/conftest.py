"""Fixtures: a small synthetic transform output (no Beam)."""

import pytest

from tests.components.train.synthetic import write_features


@pytest.fixture(scope="session")
def tune_data(tmp_path_factory):
    """``(features_dir, stats_path)`` of a 400-day synthetic series."""
    return write_features(tmp_path_factory.mktemp("tune-synthetic"), days=400, seed=1)
