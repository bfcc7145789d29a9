"""The serving SavedModel: TF-Serving layout ``<base_dir>/<version>/``.

Signature ``serving_default``: one float32 ``[None]`` tensor per name in
``FEATURE_NAMES`` (raw features; normalisation is inside the model) and the outputs
``{"log_return": float32 [None], "quantiles": float32 [None, levels]}``: the median log
return (the point forecast) and the quantiles of the log return at the model's levels,
which the SavedModel's function ``quantile_levels()`` returns (float32 ``[levels]``).
The endpoint is declared explicitly with ``keras.export.ExportArchive`` (the mechanism
behind ``Model.export(format="tf_saved_model")``) so the signature is fixed by the data
contract, not by the model's layer names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from components.common.contracts import LEVELS_NAME, OUTPUT_NAME, QUANTILES_NAME, SIGNATURE
from components.common.features import FEATURE_NAMES

_VERSION = re.compile(r"^[0-9]+$")


def export_serving_model(
    model, base_dir: str | os.PathLike, version: str | int, levels: Sequence[float]
) -> Path:
    """Write ``model`` to ``<base_dir>/<version>/`` and return that path.

    ``model`` maps a dict of float32 ``[None]`` tensors keyed by feature name to the
    quantiles of the next-day log return at ``levels`` (``[None, len(levels)]``, 0.5 among
    them).
    ``version`` must be a positive integer (TF Serving only loads numeric versions);
    an existing version is never overwritten.
    """
    import keras
    import tensorflow as tf

    version = str(version)
    if not _VERSION.match(version):
        raise ValueError(f"model version must be digits only (TF Serving layout), got {version!r}")
    path = Path(base_dir) / version
    if path.exists():
        raise FileExistsError(f"model version already exists, not overwriting: {path}")

    levels = [float(v) for v in levels]
    median = levels.index(0.5)
    spec = {name: tf.TensorSpec([None], tf.float32, name=name) for name in FEATURE_NAMES}

    @tf.function(input_signature=[spec])
    def serve(features):
        quantiles = tf.reshape(
            tf.cast(model(features, training=False), tf.float32), [-1, len(levels)]
        )
        return {OUTPUT_NAME: quantiles[:, median], QUANTILES_NAME: quantiles}

    archive = keras.export.ExportArchive()
    archive.track(model)
    constant = tf.constant(levels, dtype=tf.float32)
    archive.add_endpoint(LEVELS_NAME, tf.function(lambda: constant, input_signature=[]))
    archive.add_endpoint(SIGNATURE, serve)
    path.parent.mkdir(parents=True, exist_ok=True)
    archive.write_out(str(path), verbose=False)
    return path


def load_serving_fn(path: str | os.PathLike) -> Callable[[Mapping[str, object]], np.ndarray]:
    """Load an exported model; the callable maps ``{feature: values}`` (a dict or a
    DataFrame holding every feature column) to a float32 array of (median) log returns.

    ``fn.outputs(features)`` gives every output of one call. ``fn.levels`` is the model's
    tuple of quantile levels and ``fn.quantiles(features)`` its ``[rows, levels]`` float32
    quantiles; both are None for a model exported before quantile forecasts (a point
    forecast only)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures[SIGNATURE]

    def feed(features: Mapping[str, object]) -> dict:
        missing = [n for n in FEATURE_NAMES if n not in features]
        if missing:
            raise KeyError(f"missing features for the serving model: {', '.join(missing)}")
        return {
            n: tf.constant(np.asarray(features[n], dtype=np.float32).reshape(-1))
            for n in FEATURE_NAMES
        }

    def median(features: Mapping[str, object]) -> np.ndarray:
        return signature(**feed(features))[OUTPUT_NAME].numpy()

    def quantiles(features: Mapping[str, object]) -> np.ndarray:
        return signature(**feed(features))[QUANTILES_NAME].numpy()

    def outputs(features: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Every output of one signature call: ``{log_return: ..., quantiles: ...}``."""
        return {name: value.numpy() for name, value in signature(**feed(features)).items()}

    stored = getattr(loaded, LEVELS_NAME, None)
    has_quantiles = stored is not None and QUANTILES_NAME in signature.structured_outputs
    median.levels = (  # type: ignore[attr-defined]
        tuple(round(float(v), 6) for v in stored().numpy()) if has_quantiles else None
    )
    median.quantiles = quantiles if has_quantiles else None  # type: ignore[attr-defined]
    median.outputs = outputs  # type: ignore[attr-defined]
    median.signature = signature  # type: ignore[attr-defined]
    median.module = loaded  # type: ignore[attr-defined]
    return median
