"""The Keras DNN regressor: raw named features in, next-day log return out.

Inside the model: features are normalised with the train-only statistics (a
``Normalization`` layer with fixed mean/variance), a small ReLU MLP with L2 and dropout
predicts the *standardised* target, and a fixed ``Rescaling`` layer turns it back into
a log return. The output layer starts at zero, i.e. at the train mean return (the
drift): training only moves it as far as the evidence allows, the natural prior for a
near random walk. The train step averages a few such nets trained with different seeds
(``build_ensemble``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

from components.common.contracts import HPARAM_NAMES
from components.common.features import FEATURE_NAMES
from components.train.data import Split, Stats

log = logging.getLogger(__name__)

#: Used for keys missing from best_params, and tune's first (reference) trial: a
#: conservative small net. ``l2`` (the L2 factor on every kernel) is the geometric middle
#: of tune's log range 1e-3 .. 1e-1, an a-priori choice; it is also the fallback for
#: best_params files written before ``l2`` was tuned.
DEFAULT_HPARAMS: dict[str, float | int] = {
    "learning_rate": 1e-3,
    "num_layers": 2,
    "first_layer_units": 32,
    "layer_scale": 0.5,
    "dropout": 0.2,
    "batch_size": 64,
    "l2": 1e-2,
}
#: Huber on the standardised target: quadratic for ordinary days, linear for the fat
#: tails (a 4-sigma crash day should not dominate the fit).
HUBER_DELTA = 1.0
Z_LAYER = "standardised_return"
OUTPUT_LAYER = "log_return"


def limit_threads(threads: int | None = None) -> None:
    """Keep TensorFlow to ``threads`` (default ``$CRYPTO_TF_THREADS`` or 1) intra- and
    inter-op threads: tiny nets gain nothing from more and the machine is shared.
    A no-op once TensorFlow's runtime has started."""
    import tensorflow as tf

    n = int(threads or os.environ.get("CRYPTO_TF_THREADS", "1"))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        pass  # already initialised: keep what it has


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow (weights, dropout, shuffling)."""
    import keras

    keras.utils.set_random_seed(int(seed))


def validate_hparams(hparams: Mapping[str, object]) -> dict[str, float | int]:
    """Complete ``hparams`` with defaults, check types and ranges, return a clean dict."""
    unknown = sorted(set(hparams) - set(HPARAM_NAMES))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) {unknown}; expected keys {list(HPARAM_NAMES)}"
        )
    merged = {**DEFAULT_HPARAMS, **hparams}
    try:
        clean = {
            "learning_rate": float(merged["learning_rate"]),
            "num_layers": int(merged["num_layers"]),
            "first_layer_units": int(merged["first_layer_units"]),
            "layer_scale": float(merged["layer_scale"]),
            "dropout": float(merged["dropout"]),
            "batch_size": int(merged["batch_size"]),
            "l2": float(merged["l2"]),
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"hyper-parameters must be numbers: {exc}") from exc
    checks = {
        "learning_rate": clean["learning_rate"] > 0,
        "num_layers": clean["num_layers"] >= 0,
        "first_layer_units": clean["first_layer_units"] >= 1,
        "layer_scale": 0 < clean["layer_scale"] <= 1,
        "dropout": 0 <= clean["dropout"] < 1,
        "batch_size": clean["batch_size"] >= 1,
        "l2": 0 <= clean["l2"] < float("inf"),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise ValueError(
            f"hyper-parameter(s) out of range: {', '.join(f'{k}={clean[k]}' for k in bad)}"
        )
    return clean


def layer_widths(hparams: Mapping[str, object]) -> list[int]:
    """Hidden layer widths: ``first_layer_units · layer_scale**i``, at least 2."""
    h = validate_hparams(hparams)
    return [
        max(2, round(h["first_layer_units"] * h["layer_scale"] ** i))
        for i in range(h["num_layers"])
    ]


def build_model(hparams: Mapping[str, object], stats: Stats, name: str = "next_day_log_return"):
    """DNN regressor: ``{feature: float32 [None]}`` → log return ``[None]``; L2 of
    ``hparams["l2"]`` on every kernel, dropout after every hidden layer."""
    import keras

    h = validate_hparams(hparams)
    inputs = {n: keras.Input(shape=(), name=n, dtype="float32") for n in FEATURE_NAMES}
    columns = [keras.layers.Reshape((1,), name=f"{n}_column")(inputs[n]) for n in FEATURE_NAMES]
    x = keras.layers.Concatenate(name="features")(columns)
    x = keras.layers.Normalization(
        mean=[stats.mean[n] for n in FEATURE_NAMES],
        variance=[stats.std[n] ** 2 for n in FEATURE_NAMES],
        name="normalise",
    )(x)
    regulariser = keras.regularizers.L2(h["l2"])
    for i, units in enumerate(layer_widths(h)):
        x = keras.layers.Dense(
            units, activation="relu", kernel_regularizer=regulariser, name=f"hidden_{i}"
        )(x)
        if h["dropout"] > 0:
            x = keras.layers.Dropout(h["dropout"], name=f"dropout_{i}")(x)
    z = keras.layers.Dense(
        1,
        kernel_initializer="zeros",
        bias_initializer="zeros",
        kernel_regularizer=regulariser,
        name=Z_LAYER,
    )(x)
    ret = keras.layers.Rescaling(
        scale=stats.target_std, offset=stats.target_mean, name="unstandardise"
    )(z)
    out = keras.layers.Reshape((), name=OUTPUT_LAYER)(ret)
    return keras.Model(inputs, out, name=name)


def build_ensemble(members: Sequence):
    """One model averaging the log returns of ``members`` (same named inputs and output).

    Averaging nets that differ only in their seed keeps what they agree on (the drift and
    any stable signal) and shrinks the seed-specific corrections. It also undoes the
    winner's curse of tuning: the best trial is partly a lucky (parameters, seed) pair
    on the eval split."""
    import keras

    if len(members) == 1:
        return members[0]
    inputs = {n: keras.Input(shape=(), name=n, dtype="float32") for n in FEATURE_NAMES}
    average = keras.layers.Average(name=OUTPUT_LAYER)([m(inputs) for m in members])
    return keras.Model(inputs, average, name="ensemble")


def standardised(split: Split, stats: Stats) -> np.ndarray:
    """The split's target in train-standardised units, shape ``[n, 1]``."""
    z = (split.target.astype(np.float64) - stats.target_mean) / stats.target_std
    return z.astype(np.float32).reshape(-1, 1)


def predict_log_return(model, split: Split, chunk: int = 8192) -> np.ndarray:
    """The model's log returns for every row of ``split`` (direct forward passes:
    ``Model.predict`` would retrace for every new model, e.g. each tuning trial)."""
    import tensorflow as tf

    out = []
    for start in range(0, len(split), chunk):
        batch = {n: tf.constant(v[start : start + chunk]) for n, v in split.features.items()}
        out.append(np.asarray(model(batch, training=False), dtype=np.float64).reshape(-1))
    return np.concatenate(out)


def price_mae(split: Split, log_return: np.ndarray) -> float:
    """MAE of the next-day close implied by ``log_return`` on ``split``."""
    predicted = split.close * np.exp(np.asarray(log_return, dtype=np.float64))
    return float(np.mean(np.abs(predicted - split.next_close())))


def huber(error: np.ndarray, delta: float = HUBER_DELTA) -> float:
    """Mean Huber loss of ``error`` (numpy; matches ``keras.losses.Huber``)."""
    a = np.abs(np.asarray(error, dtype=np.float64))
    return float(np.mean(np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta))))


def _eval_callback(model, split: Split, stats: Stats):
    """Adds ``val_loss`` (Huber on the standardised target, no regularisation term) and
    ``val_price_mae`` (next-day close MAE) of ``split`` to the logs after each epoch.

    One direct forward pass instead of Keras' validation loop plus a predict: this is
    most of an epoch's cost on ~1,200 rows."""
    import keras
    import tensorflow as tf

    inputs = {n: tf.constant(v) for n, v in split.features.items()}
    z_true = standardised(split, stats).reshape(-1).astype(np.float64)

    class EvalMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pred = np.asarray(model(inputs, training=False), dtype=np.float64).reshape(-1)
            if logs is not None:
                logs["val_loss"] = huber((pred - stats.target_mean) / stats.target_std - z_true)
                logs["val_price_mae"] = price_mae(split, pred)

    return EvalMetrics()


def _epoch_logger(label: str, level: int):
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            shown = " ".join(
                f"{k}={v:.5g}"
                for k, v in sorted((logs or {}).items())
                if isinstance(v, (int, float))
            )
            log.log(level, "%s epoch %d: %s", label, epoch + 1, shown)

    return EpochLog()


def fit(
    model,
    train: Split,
    eval_split: Split,
    stats: Stats,
    hparams: Mapping[str, object],
    *,
    epochs: int,
    patience: int = 5,
    callbacks: Sequence = (),
    label: str = "train",
    log_level: int = logging.INFO,
) -> dict[str, list[float]]:
    """Fit ``model`` on the standardised target with early stopping on the eval loss
    (best weights restored).

    ``callbacks`` run after the eval metrics are in the logs (``val_loss``,
    ``val_price_mae``), so they can read them. Returns the per-epoch history. Seed
    (``seed_everything``) before ``build_model`` for a reproducible run.
    """
    import keras

    h = validate_hparams(hparams)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    # Train the standardised head; `model` shares its weights and adds the un-standardising.
    head = keras.Model(model.inputs, model.get_layer(Z_LAYER).output)
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate=h["learning_rate"]),
        loss=keras.losses.Huber(delta=HUBER_DELTA),
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", mode="min", patience=patience, restore_best_weights=True
    )
    history = head.fit(
        train.features,
        standardised(train, stats),
        epochs=int(epochs),
        batch_size=h["batch_size"],
        shuffle=True,
        verbose=0,
        callbacks=[
            _eval_callback(model, eval_split, stats),
            *callbacks,
            stop,
            _epoch_logger(label, log_level),
        ],
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}
