"""Tiny exported models for the deploy tests (built once per session, copied per test)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from components.common.features import FEATURE_NAMES, Bar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tiny_model(kernel: float | None, bias: float):
    """Dict inputs named by FEATURE_NAMES -> one Dense unit -> log return ``[None]``."""
    import keras

    inputs = {name: keras.Input(shape=(), name=name, dtype="float32") for name in FEATURE_NAMES}
    stacked = keras.ops.stack([inputs[name] for name in FEATURE_NAMES], axis=-1)
    init = "glorot_uniform" if kernel is None else keras.initializers.Constant(kernel)
    dense = keras.layers.Dense(
        1, kernel_initializer=init, bias_initializer=keras.initializers.Constant(bias)
    )
    return keras.Model(inputs, keras.layers.Reshape(())(dense(stacked)))


@pytest.fixture(scope="session")
def model_sources(tmp_path_factory) -> dict[str, Path]:
    """Train-style model dirs ``<dir>/<version>/``: good v1, v2, a NaN model, a broken one."""
    import keras

    from components.train.export import export_serving_model

    keras.utils.set_random_seed(7)
    base = tmp_path_factory.mktemp("model_sources")
    sources = {}
    for label, version, kernel, bias in (
        ("v1", 1, 0.01, 0.001),
        ("v2", 2, -0.02, 0.002),
        ("nan", 3, float("nan"), 0.0),
    ):
        sources[label] = base / label
        export_serving_model(_tiny_model(kernel, bias), sources[label], version)
    broken = base / "broken" / "4"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"this is not a protobuf")
    sources["broken"] = base / "broken"
    return sources


@pytest.fixture
def model_dir(model_sources, tmp_path):
    """Copy a session model source into this test's tmp dir: ``model_dir("v1")``."""

    def copy(label: str) -> Path:
        target = tmp_path / "models" / label
        if not target.exists():
            shutil.copytree(model_sources[label], target)
        return target

    return copy


@pytest.fixture
def repo(tmp_path) -> Path:
    return tmp_path / "repository"


def read_bars(path: Path, last: int | None = None) -> list[Bar]:
    """Bars of a Kaggle-schema CSV with ISO dates (the shared Bitcoin file)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if last is not None:
        rows = rows[-last:]
    return [
        Bar(
            date=dt.date.fromisoformat(r["date"]),
            open=float(r["open"]),
            high=float(r["high"]),
            low=float(r["low"]),
            close=float(r["close"]),
            volume=float(r["volume"]),
        )
        for r in rows
    ]
