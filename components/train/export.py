"""The serving SavedModel: TF-Serving layout ``<base_dir>/<version>/``.

Signature ``serving_default``: one float32 ``[None]`` tensor per name in
``FEATURE_NAMES`` (raw features; normalisation is inside the model) and the output
``{"log_return": float32 [None]}``. The endpoint is declared explicitly with
``keras.export.ExportArchive`` (the mechanism behind ``Model.export(format=
"tf_saved_model")``) so the signature is fixed by the data contract, not by the
model's layer names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from components.common.contracts import OUTPUT_NAME, SIGNATURE
from components.common.features import FEATURE_NAMES

_VERSION = re.compile(r"^[0-9]+$")


def export_serving_model(model, base_dir: str | os.PathLike, version: str | int) -> Path:
    """Write ``model`` to ``<base_dir>/<version>/`` and return that path.

    ``model`` maps a dict of float32 ``[None]`` tensors keyed by feature name to the
    next-day log return (``[None]`` or ``[None, 1]``, or a dict holding ``log_return``).
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

    spec = {name: tf.TensorSpec([None], tf.float32, name=name) for name in FEATURE_NAMES}

    @tf.function(input_signature=[spec])
    def serve(features):
        out = model(features, training=False)
        if isinstance(out, Mapping):
            out = out[OUTPUT_NAME]
        return {OUTPUT_NAME: tf.reshape(tf.cast(out, tf.float32), [-1])}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve)
    path.parent.mkdir(parents=True, exist_ok=True)
    archive.write_out(str(path), verbose=False)
    return path


def load_serving_fn(path: str | os.PathLike) -> Callable[[Mapping[str, object]], np.ndarray]:
    """Load an exported model; the callable maps ``{feature: values}`` (a dict or a
    DataFrame holding every feature column) to a float32 array of log returns."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures[SIGNATURE]

    def predict(features: Mapping[str, object]) -> np.ndarray:
        missing = [n for n in FEATURE_NAMES if n not in features]
        if missing:
            raise KeyError(f"missing features for the serving model: {', '.join(missing)}")
        feed = {
            n: tf.constant(np.asarray(features[n], dtype=np.float32).reshape(-1))
            for n in FEATURE_NAMES
        }
        return signature(**feed)[OUTPUT_NAME].numpy()

    predict.signature = signature  # type: ignore[attr-defined]
    predict.module = loaded  # keep the loaded object alive with the function
    return predict
