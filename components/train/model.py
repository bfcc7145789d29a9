"""The Keras quantile regressor: raw named features in, quantiles of the next-day log
return out (``build_model``; the median is the point forecast).

Inside the model: features are normalised with the train-only statistics (a
``Normalization`` layer with fixed mean/variance), a small ReLU MLP with L2 and dropout
predicts a median and a log scale of the *standardised* target, the quantile head turns
them into non-crossing quantiles, and a fixed ``Rescaling`` layer returns log returns.
It is fitted with the pinball (quantile) loss. The train step averages a few such nets
trained with different seeds (``build_ensemble``).
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

#: Used for keys missing from best_params, and tune's first (reference) trial: a small
#: net (one hidden layer of 16), light L2 and dropout, a fairly fast learning rate. The
#: quantile head does most of the work (location and scale of a fat-tailed shape), so the
#: net only has to map the volatility features to them; a wider or deeper net overfits
#: the ~1,200 training days. Chosen a priori, then checked once on the eval split.
DEFAULT_HPARAMS: dict[str, float | int] = {
    "learning_rate": 3e-3,
    "num_layers": 1,
    "first_layer_units": 16,
    "layer_scale": 0.5,
    "dropout": 0.1,
    "batch_size": 64,
    "l2": 1e-3,
}
Z_LAYER = "standardised_quantiles"
OUTPUT_LAYER = "quantiles"


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


def _inverse_normal(level: float) -> float:
    import statistics

    return statistics.NormalDist().inv_cdf(level)


def _softplus_inverse(y: float) -> float:
    return float(np.log(np.expm1(y)))


def quantile_head_class():
    """The Keras layer that turns (median, log scale) into non-crossing quantiles.

    ``q_k = median + exp(log_scale) * c_k`` with ``c`` at the median 0, above it a
    cumulative sum of positive gaps, below it the same downwards: the gaps are softplus
    of trained weights, so the quantiles increase with the level by construction (no
    sorting after the fact). The gaps start at a normal distribution's (``Φ⁻¹(level)``,
    in standardised units); the net moves the location and the scale per day, the gaps
    learn the shape (fat tails, skew) shared by every day."""
    import keras
    import tensorflow as tf

    class QuantileHead(keras.layers.Layer):
        def __init__(self, levels, **kwargs):
            super().__init__(**kwargs)
            self.levels = tuple(float(v) for v in levels)
            self.mid = self.levels.index(0.5)

        def build(self, input_shape):
            z = [_inverse_normal(v) for v in self.levels]
            up = [z[i + 1] - z[i] for i in range(self.mid, len(z) - 1)]
            down = [z[i] - z[i - 1] for i in range(self.mid, 0, -1)]
            self.up = self.add_weight(
                name="gaps_up",
                shape=(len(up),),
                initializer=keras.initializers.Constant([_softplus_inverse(g) for g in up]),
            )
            self.down = self.add_weight(
                name="gaps_down",
                shape=(len(down),),
                initializer=keras.initializers.Constant([_softplus_inverse(g) for g in down]),
            )

        def call(self, median, log_scale):
            above = tf.cumsum(tf.nn.softplus(self.up))
            below = tf.reverse(-tf.cumsum(tf.nn.softplus(self.down)), [0])
            offsets = tf.concat([below, tf.zeros([1], dtype=above.dtype), above], axis=0)
            # The scale is clipped in log space so that a wild input gives a wide, finite
            # interval (features near float32's limit, ~3e38, still overflow in the
            # normalisation: the server refuses the non-finite answer with a 400).
            scale = tf.exp(tf.clip_by_value(log_scale, -10.0, 10.0))
            return median + scale * offsets[None, :]

        def get_config(self):
            return {**super().get_config(), "levels": list(self.levels)}

    return QuantileHead


def build_model(
    hparams: Mapping[str, object],
    stats: Stats,
    levels: Sequence[float],
    name: str = "next_day_return_quantiles",
):
    """Quantile regressor: ``{feature: float32 [None]}`` → quantiles of tomorrow's log
    return ``[None, len(levels)]`` (increasing along the levels). L2 of ``hparams["l2"]``
    on every kernel, dropout after every hidden layer.

    Inside: the features normalised with the train statistics; a ReLU MLP; a median head
    (zero-initialised: it starts at the train mean return, the drift of a near random walk)
    and a log-scale head that also sees the normalised features directly (a linear path:
    volatility features map to the scale as in a HAR model), then ``QuantileHead``. Both
    work in train-standardised units; a fixed ``Rescaling`` returns log returns."""
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
    hidden = x
    for i, units in enumerate(layer_widths(h)):
        hidden = keras.layers.Dense(
            units, activation="relu", kernel_regularizer=regulariser, name=f"hidden_{i}"
        )(hidden)
        if h["dropout"] > 0:
            hidden = keras.layers.Dropout(h["dropout"], name=f"dropout_{i}")(hidden)
    median = keras.layers.Dense(
        1,
        kernel_initializer="zeros",
        bias_initializer="zeros",
        kernel_regularizer=regulariser,
        name="median",
    )(hidden)
    scale_inputs = (
        keras.layers.Concatenate(name="scale_inputs")([x, hidden]) if hidden is not x else x
    )
    # No L2 on the scale: shrinking it towards a constant spread is what the historical
    # baseline already does; the evidence for volatility clustering should move it freely.
    log_scale = keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer="zeros", name="log_scale"
    )(scale_inputs)
    z = quantile_head_class()(levels, name=Z_LAYER)(median, log_scale)
    out = keras.layers.Rescaling(
        scale=stats.target_std, offset=stats.target_mean, name=OUTPUT_LAYER
    )(z)
    return keras.Model(inputs, out, name=name)


def build_ensemble(members: Sequence):
    """One model averaging the quantiles of ``members`` (same named inputs and output).

    The average of increasing quantile vectors is increasing, so the ensemble never
    crosses either. Averaging nets that differ only in their seed keeps what they agree on
    and shrinks the seed-specific corrections; it also undoes the winner's curse of
    tuning (the best trial is partly a lucky seed on the eval split)."""
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


def predict_quantiles(model, split: Split, chunk: int = 8192) -> np.ndarray:
    """The model's quantiles of the log return, ``[rows, levels]`` float64 (direct
    forward passes: ``Model.predict`` would retrace for every new model, e.g. each
    tuning trial)."""
    import tensorflow as tf

    out = []
    for start in range(0, len(split), chunk):
        batch = {n: tf.constant(v[start : start + chunk]) for n, v in split.features.items()}
        q = np.asarray(model(batch, training=False), dtype=np.float64)
        out.append(q.reshape(len(q), -1))
    return np.concatenate(out)


def price_mae(split: Split, log_return: np.ndarray) -> float:
    """MAE of the next-day close implied by ``log_return`` on ``split``."""
    predicted = split.close * np.exp(np.asarray(log_return, dtype=np.float64))
    return float(np.mean(np.abs(predicted - split.next_close())))


def pinball(target: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> float:
    """Mean pinball loss over rows and levels (numpy; the training loss's definition)."""
    error = np.asarray(target, dtype=np.float64).reshape(-1, 1) - np.asarray(quantiles)
    tau = np.asarray(levels, dtype=np.float64)[None, :]
    return float(np.mean(np.maximum(tau * error, (tau - 1.0) * error)))


def pinball_loss(levels: Sequence[float]):
    """The Keras loss: mean pinball over the levels, on the standardised target."""
    import tensorflow as tf

    tau = tf.constant([list(levels)], dtype=tf.float32)

    def loss(y_true, y_pred):
        error = tf.reshape(tf.cast(y_true, tf.float32), [-1, 1]) - y_pred
        return tf.reduce_mean(tf.maximum(tau * error, (tau - 1.0) * error), axis=-1)

    return loss


def _eval_callback(model, split: Split, stats: Stats, levels: Sequence[float]):
    """Adds ``val_loss`` (pinball on the standardised target, no regularisation term) and
    ``val_price_mae`` (next-day close MAE of the median) of ``split`` to the logs after
    each epoch.

    One direct forward pass instead of Keras' validation loop plus a predict: this is
    most of an epoch's cost on ~1,200 rows."""
    import keras
    import tensorflow as tf

    inputs = {n: tf.constant(v) for n, v in split.features.items()}
    z_true = standardised(split, stats).reshape(-1).astype(np.float64)
    mid = list(levels).index(0.5)

    class EvalMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            q = np.asarray(model(inputs, training=False), dtype=np.float64)
            if logs is not None:
                logs["val_loss"] = pinball(
                    z_true, (q - stats.target_mean) / stats.target_std, levels
                )
                logs["val_price_mae"] = price_mae(split, q[:, mid])

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
    levels: Sequence[float],
    *,
    epochs: int,
    patience: int = 5,
    callbacks: Sequence = (),
    label: str = "train",
    log_level: int = logging.INFO,
) -> dict[str, list[float]]:
    """Fit ``model`` to the standardised target with the pinball loss at ``levels``, early
    stopping on the eval pinball loss (best weights restored).

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
        loss=pinball_loss(levels),
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
            _eval_callback(model, eval_split, stats, levels),
            *callbacks,
            stop,
            _epoch_logger(label, log_level),
        ],
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}
