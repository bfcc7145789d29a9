"""The Keras model: named raw inputs, normalisation and un-standardising inside, quantiles
that never cross."""

import numpy as np
import pytest

from components.common.features import FEATURE_NAMES
from components.train import model as model_lib
from tests.components.train.conftest import LEVELS

MEDIAN = LEVELS.index(0.5)


def _median(model, split):
    return model_lib.predict_quantiles(model, split)[:, MEDIAN]


def _raw_matrix(split):
    return np.stack([split.features[n] for n in FEATURE_NAMES], axis=1).astype(np.float64)


def test_inputs_are_the_named_raw_features(trained_model):
    assert sorted(t.name for t in trained_model.inputs) == sorted(FEATURE_NAMES)
    assert all(tuple(t.shape) == (None,) and t.dtype == "float32" for t in trained_model.inputs)
    assert tuple(trained_model.outputs[0].shape) == (None, len(LEVELS))


def test_untrained_model_predicts_a_normal_around_the_train_mean(splits_and_stats):
    """Before training: the median is the train mean return and the quantiles are a
    normal's with the train std (the head's starting point)."""
    from statistics import NormalDist

    splits, stats = splits_and_stats
    model_lib.seed_everything(1)
    model = model_lib.build_model({"num_layers": 2, "first_layer_units": 16}, stats, LEVELS)
    q = model_lib.predict_quantiles(model, splits["test"])
    z = np.array([NormalDist().inv_cdf(v) for v in LEVELS])
    np.testing.assert_allclose(
        q, np.broadcast_to(stats.target_mean + stats.target_std * z, q.shape), atol=1e-6
    )


def test_normalisation_and_unstandardising_happen_inside(trained_model, splits_and_stats):
    """Feeding raw features gives what a by-hand forward pass on train-standardised
    features gives, rescaled by the train target statistics."""
    splits, stats = splits_and_stats
    test = splits["test"]
    mean = np.array([stats.mean[n] for n in FEATURE_NAMES])
    std = np.array([stats.std[n] for n in FEATURE_NAMES])
    w0, b0 = (
        np.asarray(w, dtype=np.float64) for w in trained_model.get_layer("hidden_0").get_weights()
    )
    w1, b1 = (
        np.asarray(w, dtype=np.float64) for w in trained_model.get_layer("median").get_weights()
    )
    assert np.abs(w1).max() > 0, "fixture model should have moved its median layer"
    hidden = np.maximum((_raw_matrix(test) - mean) / std @ w0 + b0, 0.0)
    by_hand = (hidden @ w1 + b1).reshape(-1) * stats.target_std + stats.target_mean
    np.testing.assert_allclose(_median(trained_model, test), by_hand, rtol=1e-4, atol=1e-7)
    assert np.std(by_hand) > 0


def test_quantiles_never_cross_even_on_extreme_inputs(trained_model, splits_and_stats):
    """Increasing along the levels by construction, for ordinary and absurd rows alike."""
    import tensorflow as tf

    test = splits_and_stats[0]["test"]
    q = model_lib.predict_quantiles(trained_model, test)
    assert np.all(np.diff(q, axis=1) > 0)
    rng = np.random.default_rng(0)
    wild = {n: tf.constant(rng.normal(0, 1e4, 256).astype(np.float32)) for n in FEATURE_NAMES}
    q = np.asarray(trained_model(wild, training=False), dtype=np.float64)
    assert np.isfinite(q).all()
    assert np.all(np.diff(q, axis=1) >= 0)


def test_layer_widths_follow_the_scale():
    assert model_lib.layer_widths(
        {"num_layers": 3, "first_layer_units": 64, "layer_scale": 0.5}
    ) == [64, 32, 16]
    assert model_lib.layer_widths(
        {"num_layers": 2, "first_layer_units": 3, "layer_scale": 0.25}
    ) == [3, 2]


def test_hparams_are_validated():
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        model_lib.validate_hparams({"learning_rat": 0.1})
    with pytest.raises(ValueError, match="dropout=1.5"):
        model_lib.validate_hparams({"dropout": 1.5})
    assert model_lib.validate_hparams({}) == model_lib.DEFAULT_HPARAMS
    with pytest.raises(ValueError, match="l2=-0.01"):
        model_lib.validate_hparams({"l2": -0.01})
    # best_params written before l2 was tuned (the six original keys) still validate
    six = {k: v for k, v in model_lib.DEFAULT_HPARAMS.items() if k != "l2"}
    assert (
        model_lib.validate_hparams({**six, "dropout": 0.1})["l2"] == model_lib.DEFAULT_HPARAMS["l2"]
    )


@pytest.mark.parametrize("l2", [1e-3, 0.05])
def test_l2_reaches_every_kernel_but_the_scale(splits_and_stats, l2):
    _, stats = splits_and_stats
    model = model_lib.build_model(
        {"num_layers": 2, "first_layer_units": 8, "l2": l2}, stats, LEVELS
    )
    dense = [
        layer
        for layer in model.layers
        if layer.name.startswith("hidden_") or layer.name == "median"
    ]
    assert len(dense) == 3
    for layer in dense:
        assert float(layer.kernel_regularizer.l2) == pytest.approx(l2)
    assert model.get_layer("log_scale").kernel_regularizer is None


def test_seeded_fits_are_identical(splits_and_stats):
    splits, stats = splits_and_stats
    params = {"num_layers": 1, "first_layer_units": 8, "dropout": 0.1, "batch_size": 64}
    predictions = []
    for _ in range(2):
        model_lib.seed_everything(7)
        model = model_lib.build_model(params, stats, LEVELS)
        history = model_lib.fit(
            model, splits["train"], splits["eval"], stats, params, LEVELS, epochs=2
        )
        assert set(history) >= {"loss", "val_loss", "val_price_mae"}
        predictions.append(model_lib.predict_quantiles(model, splits["test"]))
    np.testing.assert_array_equal(predictions[0], predictions[1])


def test_ensemble_averages_its_members(trained_ensemble, splits_and_stats):
    ensemble, members = trained_ensemble
    test = splits_and_stats[0]["test"]
    each = [model_lib.predict_quantiles(m, test) for m in members]
    assert np.abs(each[0] - each[1]).max() > 0, "members should differ"
    np.testing.assert_allclose(
        model_lib.predict_quantiles(ensemble, test), np.mean(each, axis=0), atol=1e-8
    )
    assert sorted(t.name for t in ensemble.inputs) == sorted(FEATURE_NAMES)
    assert model_lib.build_ensemble(members[:1]) is members[0]
