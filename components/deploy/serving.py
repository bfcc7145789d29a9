"""Load an exported SavedModel and predict on named feature rows.

Used by the deploy smoke test and by the local model server, so both exercise the model
exactly as a client of the ``serving_default`` signature would (train → deploy contract:
one float32 ``[None]`` input per feature name; outputs ``log_return``, the median, and
``quantiles`` ``[None, levels]`` at the levels the SavedModel's ``quantile_levels()``
returns). A model exported before quantile forecasts has ``log_return`` only: it loads
with ``levels`` None and is served as a point forecast.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.common.contracts import LEVELS_NAME, OUTPUT_NAME, QUANTILES_NAME, SIGNATURE
from components.common.features import HISTORY_DAYS, Bar, latest_features
from components.common.quantiles import QuantileLevelsError, level_key, parse_quantile_levels


class ModelLoadError(RuntimeError):
    """The SavedModel cannot be loaded or does not have the expected signature."""


@dataclass(frozen=True)
class Outputs:
    """The signature's outputs for a batch of rows, from one call: the median log returns
    (float32 ``[rows]``) and, for a quantile model, the quantiles (float32 ``[rows,
    levels]``; None for a point model)."""

    log_returns: np.ndarray
    quantiles: np.ndarray | None


class ServingModel:
    """A loaded SavedModel's ``serving_default`` signature with named float inputs.

    ``levels`` (read once, here) is the model's tuple of quantile levels and
    ``level_keys`` their JSON keys (``"0.05"``, ...); both are None for a point model."""

    def __init__(self, path: str | Path, version: str | None = None):
        import tensorflow as tf  # heavy: imported only when a model is loaded

        self._tf = tf
        self.path = Path(path)
        self.version = version
        try:
            loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # TF raises many types for a corrupt model
            raise ModelLoadError(f"cannot load SavedModel at {self.path}: {exc}") from exc
        if SIGNATURE not in loaded.signatures:
            raise ModelLoadError(
                f"SavedModel at {self.path} has no {SIGNATURE!r} signature "
                f"(has: {', '.join(loaded.signatures) or 'none'})"
            )
        self._loaded = loaded  # keeps the variables the signature uses alive
        self._fn = loaded.signatures[SIGNATURE]
        _, kwargs = self._fn.structured_input_signature
        self.input_names: tuple[str, ...] = tuple(sorted(kwargs))
        outputs = self._fn.structured_outputs
        if OUTPUT_NAME not in outputs:
            raise ModelLoadError(
                f"SavedModel at {self.path} has no {OUTPUT_NAME!r} output "
                f"(has: {', '.join(outputs)})"
            )
        self.levels: tuple[float, ...] | None = self._read_levels(loaded, outputs)
        self.level_keys: tuple[str, ...] | None = (
            None if self.levels is None else tuple(level_key(v) for v in self.levels)
        )

    def _read_levels(self, loaded, outputs: Mapping) -> tuple[float, ...] | None:
        """The quantile levels of the SavedModel, checked against the levels contract and
        the ``quantiles`` output's width; None for a point model (no quantiles at all)."""
        function = getattr(loaded, LEVELS_NAME, None)
        has_output = QUANTILES_NAME in outputs
        if function is None and not has_output:
            return None
        if function is None or not has_output:
            present, absent = (
                (f"the output {QUANTILES_NAME!r}", f"the function {LEVELS_NAME}()")
                if has_output
                else (f"the function {LEVELS_NAME}()", f"the output {QUANTILES_NAME!r}")
            )
            raise ModelLoadError(f"SavedModel at {self.path} has {present} but not {absent}")
        try:
            values = np.asarray(function()).reshape(-1)
            # float32 levels back to the decimals they were written as (0.05, not 0.0500000007)
            levels = parse_quantile_levels(round(float(v), 6) for v in values)
        except QuantileLevelsError as exc:
            raise ModelLoadError(f"SavedModel at {self.path}: {exc}") from exc
        except Exception as exc:  # TF raises many types for a broken function
            raise ModelLoadError(
                f"SavedModel at {self.path}: {LEVELS_NAME}() fails: {exc}"
            ) from exc
        width = outputs[QUANTILES_NAME].shape
        if width.rank != 2 or (width[1] is not None and width[1] != len(levels)):
            raise ModelLoadError(
                f"SavedModel at {self.path}: output {QUANTILES_NAME!r} has shape "
                f"{width.as_list() if width.rank is not None else '?'} for "
                f"{len(levels)} levels; expected [None, {len(levels)}]"
            )
        return levels

    def outputs(self, rows: Sequence[Mapping[str, float]]) -> Outputs:
        """The median log returns and the quantiles of ``rows`` (every input name in each)
        from one call of the signature."""
        n = len(rows)
        columns = {
            name: self._tf.constant([float(row[name]) for row in rows], dtype=self._tf.float32)
            for name in self.input_names
        }
        result = self._fn(**columns)
        medians = result[OUTPUT_NAME].numpy()
        if medians.shape != (n,):
            raise ModelLoadError(
                f"model output {OUTPUT_NAME!r} has shape {list(medians.shape)} for {n} "
                f"rows; expected [{n}]"
            )
        if self.levels is None:
            return Outputs(medians, None)
        quantiles = result[QUANTILES_NAME].numpy()
        if quantiles.shape != (n, len(self.levels)):
            raise ModelLoadError(
                f"model output {QUANTILES_NAME!r} has shape {list(quantiles.shape)} for {n} "
                f"rows; expected [{n}, {len(self.levels)}]"
            )
        return Outputs(medians, quantiles)

    def predict(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        """Predicted (median) log returns, one per row. Rows must hold every input name."""
        if not rows:
            return []
        return self.outputs(rows).log_returns.tolist()


def synthetic_history(days: int = HISTORY_DAYS + 2) -> list[Bar]:
    """A deterministic, plausible daily price path for smoke tests (no data needed)."""
    start = dt.date(2020, 1, 1)
    bars = []
    for i in range(days):
        close = 100.0 * math.exp(0.01 * math.sin(i / 3.0) + 0.001 * i)
        bars.append(
            Bar(
                date=start + dt.timedelta(days=i),
                open=close * 0.995,
                high=close * 1.01,
                low=close * 0.985,
                close=close,
                volume=1e6 * (1.0 + 0.1 * math.cos(i)),
            )
        )
    return bars


def smoke_rows() -> list[dict[str, float]]:
    """Two feature rows computed by the shared feature module from synthetic bars."""
    bars = synthetic_history()
    return [latest_features(bars[:-1]), latest_features(bars)]


def smoke_test(model: ServingModel) -> list[float]:
    """Predict on ``smoke_rows()``; the median log returns. Raise ModelLoadError unless
    every output is finite and, for a quantile model, the quantiles do not cross and the
    one at 0.5 is the median."""
    rows = smoke_rows()
    missing = sorted(set(model.input_names) - set(rows[0]))
    if missing:
        raise ModelLoadError(
            f"model inputs {', '.join(missing)} are not features of components.common.features"
        )
    try:
        outputs = model.outputs(rows)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"smoke prediction failed: {exc}") from exc
    predictions = outputs.log_returns.tolist()
    if not all(math.isfinite(p) for p in predictions):
        raise ModelLoadError(f"smoke prediction is not finite: {predictions}")
    quantiles = outputs.quantiles
    if quantiles is None:
        return predictions
    if not np.isfinite(quantiles).all():
        raise ModelLoadError(f"smoke quantiles are not finite: {quantiles.tolist()}")
    if (np.diff(quantiles, axis=1) < 0).any():
        raise ModelLoadError(
            f"smoke quantiles cross (levels {list(model.levels)}): {quantiles.tolist()}"
        )
    median = quantiles[:, model.levels.index(0.5)]
    if not np.allclose(median, outputs.log_returns, rtol=1e-6, atol=1e-7):
        raise ModelLoadError(
            f"the quantile at 0.5 {median.tolist()} is not the {OUTPUT_NAME!r} output {predictions}"
        )
    return predictions
