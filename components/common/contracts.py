"""The names steps agree on, defined once.

* transform -> tune/train: the split names, the shard columns and file names, the columns
  whose train statistics ``stats.json`` holds (``components/README.md`` has the layout);
* tune -> train: the hyper-parameter names of ``best_params.json``;
* train -> deploy -> serving: the SavedModel signature and its output, the model name.

The feature names themselves live with the feature functions (``features.py``).
"""

from __future__ import annotations

from components.common.features import FEATURE_NAMES, TARGET_NAME

#: Time-ordered splits of every coin's history.
SPLITS: tuple[str, ...] = ("train", "eval", "test")
#: Columns that identify a shard row and give today's price.
KEY_COLUMNS: tuple[str, ...] = ("coin", "date", "close")
#: Columns of the feature shards, in order.
SHARD_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FEATURE_NAMES, TARGET_NAME)
#: Columns whose normalisation statistics ``stats.json`` holds.
STAT_COLUMNS: tuple[str, ...] = (*FEATURE_NAMES, TARGET_NAME)
#: The dtype the trainer gives each statistics column (shards hold repr-precision floats).
STAT_DTYPE = "float32"
#: Key of ``stats.json`` that marks the outputs of a transform that did not succeed (its
#: value says why): written while the transform runs and when it fails, removed only once
#: every output is complete and checked, so a killed or failed run is never read as valid.
STATS_FAILED_KEY = "failed"


def shard_names(split: str, num_shards: int) -> list[str]:
    """File names of one split's shards: ``train-00000-of-00002.csv``, ..."""
    return [f"{split}-{i:05d}-of-{num_shards:05d}.csv" for i in range(num_shards)]


def shard_glob(split: str) -> str:
    """Pattern matching every shard file of ``split``."""
    return f"{split}-*-of-*.csv"


#: Hyper-parameters of the model: the keys of tune's ``best_params.json``, read by train.
HPARAM_NAMES: tuple[str, ...] = (
    "learning_rate",
    "num_layers",
    "first_layer_units",
    "layer_scale",
    "dropout",
    "batch_size",
    "l2",
)

#: SavedModel signature that serving calls: one float32 ``[None]`` input per feature name
#: (raw features; the normalisation is inside the model) and one output.
SIGNATURE = "serving_default"
#: The signature's outputs: the median of the next-day log return (the point forecast),
#: float32 ``[None]``, and its quantiles, float32 ``[None, levels]``.
OUTPUT_NAME = "log_return"
QUANTILES_NAME = "quantiles"
#: The SavedModel's function (no inputs) returning the levels of ``QUANTILES_NAME``.
LEVELS_NAME = "quantile_levels"
#: Name of the model in the repository, the report and the server.
DEFAULT_MODEL_NAME = "btc-forecast"
#: Namespace of the gke target's serving objects: where deploy applies them and where
#: train reads the champion.
DEFAULT_SERVING_NAMESPACE = "serving"
