"""Reading the transform's output: shards, header validation, stats validation."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from components.common.features import FEATURE_NAMES, TARGET_NAME
from components.train.data import DataContractError, load_split, load_splits, load_stats
from tests.components.train.synthetic import write_features


def test_loads_every_split_as_float32(synthetic_data):
    features_dir, _ = synthetic_data
    splits = load_splits(features_dir)
    assert {name: len(s) for name, s in splits.items()} == {"train": 258, "eval": 55, "test": 56}
    train = splits["train"]
    assert list(train.features) == list(FEATURE_NAMES)
    assert all(v.dtype == np.float32 and v.shape == (258,) for v in train.features.values())
    assert train.target.dtype == np.float32
    assert train.close.dtype == np.float64
    # time order kept, and test strictly after train
    assert list(train.dates) == sorted(train.dates)
    assert splits["test"].dates[0] > splits["eval"].dates[-1] > train.dates[-1]


def test_shards_are_concatenated_in_date_order(tmp_path, synthetic_data):
    features_dir, _ = synthetic_data
    sharded_dir, _ = write_features(tmp_path, days=400, seed=0, shards=3)
    assert len(list(sharded_dir.glob("train-*.csv"))) == 3
    one, many = load_split(features_dir, "train"), load_split(sharded_dir, "train")
    np.testing.assert_array_equal(one.dates, many.dates)
    np.testing.assert_array_equal(one.target, many.target)


def test_next_close_is_close_times_exp_target(synthetic_data):
    split = load_split(synthetic_data[0], "test")
    frame = pd.read_csv(next(synthetic_data[0].glob("test-*.csv")))
    np.testing.assert_allclose(split.next_close()[:-1], frame["close"].to_numpy()[1:], rtol=1e-6)


def test_wrong_header_names_the_missing_column(tmp_path, synthetic_data):
    features_dir = tmp_path / "features"
    shutil.copytree(synthetic_data[0], features_dir)
    shard = next(features_dir.glob("eval-*.csv"))
    pd.read_csv(shard).drop(columns=["ret_std_30"]).to_csv(shard, index=False)
    with pytest.raises(DataContractError, match=r"eval-.*missing \['ret_std_30'\]"):
        load_split(features_dir, "eval")


def test_missing_split_and_missing_dir(tmp_path, synthetic_data):
    with pytest.raises(DataContractError, match="features directory not found"):
        load_split(tmp_path / "nope", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataContractError, match=r"no 'test-\*\.csv' shards"):
        load_split(tmp_path / "empty", "test")


def test_stats_validation(tmp_path, synthetic_data):
    stats = load_stats(synthetic_data[1])
    assert stats.target_std > 0 and set(stats.mean) == {*FEATURE_NAMES, TARGET_NAME}
    raw = json.loads(synthetic_data[1].read_text())
    bad = dict(raw, feature_names=list(FEATURE_NAMES)[:-1])
    (tmp_path / "a.json").write_text(json.dumps(bad))
    with pytest.raises(DataContractError, match="do not match this code's FEATURE_NAMES"):
        load_stats(tmp_path / "a.json")
    bad = json.loads(json.dumps(raw))
    bad["std"]["target"] = 0.0
    (tmp_path / "b.json").write_text(json.dumps(bad))
    with pytest.raises(DataContractError, match="positive std"):
        load_stats(tmp_path / "b.json")
    with pytest.raises(DataContractError, match="not found"):
        load_stats(tmp_path / "missing.json")
