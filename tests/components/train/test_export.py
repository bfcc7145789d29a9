"""The serving SavedModel: TF-Serving layout, contract signature (median and quantiles,
with the levels), same predictions."""

import numpy as np
import pytest

from components.common.contracts import QUANTILES_NAME
from components.common.features import FEATURE_NAMES
from components.train import model as model_lib
from components.train.export import OUTPUT_NAME, SIGNATURE, export_serving_model, load_serving_fn
from tests.components.train.conftest import LEVELS

MEDIAN = LEVELS.index(0.5)


@pytest.fixture(scope="module")
def exported(trained_model, tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    return base, export_serving_model(trained_model, base, "20240101000000", LEVELS)


def test_layout_is_base_version(exported):
    base, path = exported
    assert path == base / "20240101000000"
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()


def test_signature_matches_the_contract(exported):
    fn = load_serving_fn(exported[1])
    args, kwargs = fn.signature.structured_input_signature
    assert args == ()
    assert set(kwargs) == set(FEATURE_NAMES)
    for name, spec in kwargs.items():
        assert spec.dtype.name == "float32" and spec.shape.as_list() == [None], name
    outputs = fn.signature.structured_outputs
    assert set(outputs) == {OUTPUT_NAME, QUANTILES_NAME}
    assert outputs[OUTPUT_NAME].dtype.name == "float32" and outputs[
        OUTPUT_NAME
    ].shape.as_list() == [None]
    assert outputs[QUANTILES_NAME].shape.as_list() == [None, len(LEVELS)]
    assert fn.levels == LEVELS
    assert SIGNATURE == "serving_default"


def test_reloaded_model_predicts_what_the_trained_model_predicts(
    exported, trained_model, splits_and_stats
):
    splits, _ = splits_and_stats
    test = splits["test"]
    fn = load_serving_fn(exported[1])
    served = fn(test.features)
    in_memory = model_lib.predict_quantiles(trained_model, test)
    assert served.dtype == np.float32 and served.shape == (len(test),)
    np.testing.assert_allclose(served, in_memory[:, MEDIAN], rtol=0, atol=1e-7)
    np.testing.assert_allclose(fn.quantiles(test.features), in_memory, rtol=0, atol=1e-7)
    both = fn.outputs(test.features)  # one call, every output
    np.testing.assert_array_equal(both[OUTPUT_NAME], served)
    np.testing.assert_array_equal(both[QUANTILES_NAME], fn.quantiles(test.features))
    assert np.std(served) > 0


def test_existing_version_is_never_overwritten(exported, trained_model):
    base, path = exported
    stamp = (path / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="not overwriting"):
        export_serving_model(trained_model, base, "20240101000000", LEVELS)
    assert (path / "saved_model.pb").stat().st_mtime_ns == stamp


def test_version_must_be_numeric(trained_model, tmp_path):
    with pytest.raises(ValueError, match="digits only"):
        export_serving_model(trained_model, tmp_path, "v1", LEVELS)
    assert not any(tmp_path.iterdir())


def test_missing_feature_is_named(exported, splits_and_stats):
    features = dict(splits_and_stats[0]["test"].features)
    del features["dow_sin"]
    with pytest.raises(KeyError, match="dow_sin"):
        load_serving_fn(exported[1])(features)


def test_exported_ensemble_predicts_what_it_predicts_in_memory(
    trained_ensemble, splits_and_stats, tmp_path
):
    ensemble, _ = trained_ensemble
    test = splits_and_stats[0]["test"]
    fn = load_serving_fn(export_serving_model(ensemble, tmp_path, 2, LEVELS))
    np.testing.assert_allclose(
        fn.quantiles(test.features), model_lib.predict_quantiles(ensemble, test), atol=1e-7
    )
