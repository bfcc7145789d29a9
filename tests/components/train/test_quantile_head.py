"""The quantile model's contract on random nets, not only on the trained fixture: the
quantiles never cross, for any weights, any levels and extreme inputs; and the SavedModel's
``log_return`` is the median column of ``predict_quantiles``, for several level sets."""

from __future__ import annotations

import numpy as np
import pytest

from components.common.features import FEATURE_NAMES, TARGET_NAME
from components.common.quantiles import parse_quantile_levels
from components.train import model as model_lib
from components.train.data import Split, Stats

LEVEL_SETS = [
    (0.1, 0.5, 0.9),
    (0.05, 0.25, 0.5, 0.75, 0.95),
    parse_quantile_levels(",".join(f"{k / 20:g}" for k in range(1, 20))),  # 19 levels
    (0.01, 0.5, 0.6, 0.99),  # asymmetric
]


def random_stats(seed: int) -> Stats:
    rng = np.random.default_rng(seed)
    names = (*FEATURE_NAMES, TARGET_NAME)
    return Stats(
        mean={n: float(rng.normal(0, 0.05)) for n in names},
        std={n: float(rng.uniform(0.01, 2.0)) for n in names},
        raw={},
    )


def randomised(model, seed: int, scale: float = 3.0):
    """Every weight of ``model`` (kernels, biases, the head's gaps) drawn from N(0, scale²):
    far from anything training gives, negative gap weights included."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = weight.numpy()
        weight.assign(rng.normal(0, scale, value.shape).astype(value.dtype))
    return model


def split_of(features: dict[str, np.ndarray]) -> Split:
    n = len(next(iter(features.values())))
    return Split(
        name="test",
        features={k: np.asarray(v, dtype=np.float32) for k, v in features.items()},
        target=np.zeros(n, dtype=np.float32),
        close=np.ones(n),
        dates=np.array(["2020-01-01"] * n),
        coins=np.array(["c"] * n),
    )


def inputs(seed: int, n: int = 512) -> list[Split]:
    """Ordinary rows, heavy-tailed rows at magnitudes up to 1e30, and constant rows."""
    rng = np.random.default_rng(seed)
    out = [split_of({f: rng.normal(0, 1, n) for f in FEATURE_NAMES})]
    for scale in (1e3, 1e8, 1e15, 1e30):
        out.append(split_of({f: rng.standard_cauchy(n) * scale for f in FEATURE_NAMES}))
    for value in (0.0, 1e30, -1e30):
        out.append(split_of({f: np.full(4, value) for f in FEATURE_NAMES}))
    return out


@pytest.fixture(scope="module", autouse=True)
def _threads():
    model_lib.limit_threads()


@pytest.mark.parametrize("levels", LEVEL_SETS, ids=lambda v: f"{len(v)}-levels")
def test_random_nets_never_cross_on_any_input(levels):
    hparams = {"num_layers": 2, "first_layer_units": 16, "layer_scale": 0.5, "dropout": 0.1}
    nets = []
    for seed in (0, 1):
        model_lib.seed_everything(seed)
        net = model_lib.build_model(hparams, random_stats(seed), levels, name=f"net_{seed}")
        nets.append(randomised(net, seed))
    ensemble = model_lib.build_ensemble(nets)
    for model in (*nets, ensemble):
        for k, split in enumerate(inputs(len(levels))):
            q = model_lib.predict_quantiles(model, split)
            assert q.shape == (len(split), len(levels))
            assert np.isfinite(q).all(), (model.name, k)
            steps = np.diff(q, axis=1)
            # Not negative: where a wild net's median dwarfs its scale, float32 rounds
            # neighbouring quantiles to one value (equal, never crossed).
            assert (steps >= 0).all(), (model.name, k, steps.min())


def test_the_head_increases_for_any_median_scale_and_gap_weights():
    """``QuantileHead`` alone: medians and log scales from tiny to absurd (the log scale
    is clipped to [-10, 10]), gap weights of any sign."""
    import tensorflow as tf

    levels = (0.05, 0.25, 0.5, 0.75, 0.95)
    head = model_lib.quantile_head_class()(levels)
    rng = np.random.default_rng(7)
    median = tf.constant(rng.normal(0, 1, (600, 1)) * 10.0 ** rng.integers(-6, 6, (600, 1)))
    log_scale = tf.constant(rng.normal(0, 1, (600, 1)) * 10.0 ** rng.integers(-3, 7, (600, 1)))
    head(tf.cast(median, tf.float32), tf.cast(log_scale, tf.float32))  # builds the weights
    for trial in range(5):
        for weight in head.weights:
            weight.assign(rng.normal(0, 5, weight.shape).astype(np.float32))
        q = head(tf.cast(median, tf.float32), tf.cast(log_scale, tf.float32)).numpy()
        assert np.isfinite(q).all() and (np.diff(q, axis=1) >= 0).all(), trial
        # The median column is the median input, exactly: the head only adds around it.
        np.testing.assert_array_equal(q[:, 2], tf.cast(median, tf.float32).numpy()[:, 0])
    # Gaps start at the normal's: z(0.95) - z(0.5) = 1.6449 at unit scale.
    fresh = model_lib.quantile_head_class()(levels)
    z = fresh(tf.zeros((1, 1)), tf.zeros((1, 1))).numpy()[0]
    np.testing.assert_allclose(z, [-1.644854, -0.674490, 0.0, 0.674490, 1.644854], atol=1e-5)


@pytest.mark.parametrize("levels", LEVEL_SETS[:3], ids=lambda v: f"{len(v)}-levels")
def test_saved_models_log_return_is_the_median_column(levels, tmp_path):
    from components.train.export import export_serving_model, load_serving_fn

    model_lib.seed_everything(3)
    model = randomised(
        model_lib.build_model({"num_layers": 1}, random_stats(3), levels), 3, scale=0.5
    )
    split = inputs(1, n=300)[0]
    in_memory = model_lib.predict_quantiles(model, split)
    path = export_serving_model(model, tmp_path / "model", "1", levels)
    served = load_serving_fn(path)
    median = served(split.features)
    assert served.levels == tuple(levels)
    assert median.dtype == np.float32 and median.shape == (len(split),)
    np.testing.assert_allclose(median, in_memory[:, levels.index(0.5)], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(served.quantiles(split.features), in_memory, rtol=1e-6, atol=1e-7)
    # The signature's two outputs agree with each other exactly.
    np.testing.assert_array_equal(median, served.quantiles(split.features)[:, levels.index(0.5)])
    assert np.std(median) > 0
