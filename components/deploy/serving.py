"""Load an exported SavedModel and predict on named feature rows.

Used by the deploy smoke test and by the local model server, so both exercise the model
exactly as a client of the ``serving_default`` signature would (train → deploy contract:
one float32 ``[None]`` input per feature name, output ``log_return``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from components.common.contracts import OUTPUT_NAME, SIGNATURE
from components.common.features import HISTORY_DAYS, Bar, latest_features


class ModelLoadError(RuntimeError):
    """The SavedModel cannot be loaded or does not have the expected signature."""


class ServingModel:
    """A loaded SavedModel's ``serving_default`` signature with named float inputs."""

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

    def predict(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        """Predicted log returns, one per row. Rows must hold every input name."""
        if not rows:
            return []
        columns = {
            name: self._tf.constant([float(row[name]) for row in rows], dtype=self._tf.float32)
            for name in self.input_names
        }
        out = self._fn(**columns)[OUTPUT_NAME].numpy()
        if out.shape != (len(rows),):
            raise ModelLoadError(
                f"model output {OUTPUT_NAME!r} has shape {list(out.shape)} for {len(rows)} "
                f"rows; expected [{len(rows)}]"
            )
        return [float(v) for v in out]


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
    """Predict on ``smoke_rows()``; raise ModelLoadError unless the output is finite."""
    rows = smoke_rows()
    missing = sorted(set(model.input_names) - set(rows[0]))
    if missing:
        raise ModelLoadError(
            f"model inputs {', '.join(missing)} are not features of components.common.features"
        )
    try:
        predictions = model.predict(rows)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"smoke prediction failed: {exc}") from exc
    bad = [p for p in predictions if not math.isfinite(p)]
    if bad:
        raise ModelLoadError(f"smoke prediction is not finite: {predictions}")
    return predictions
