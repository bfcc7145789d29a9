"""The sanity checks every daily bar must pass, defined once (pure Python).

The Beam transform rejects a raw CSV line whose bar fails them (``components.transform``
records the code and detail as the rejection reason) and the model server answers 400 to
a history bar that fails them, so a bar the training data would never hold is never
forecast from either.
"""

from __future__ import annotations

from components.common.features import Bar

#: Default relative tolerance for open/close lying outside [low, high].
DEFAULT_PRICE_TOLERANCE = 0.01

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

# Reason codes of a failed check (the transform's rejection reasons use them too).
NON_POSITIVE_PRICE = "non_positive_price"
HIGH_BELOW_LOW = "high_below_low"
OPEN_OUTSIDE_RANGE = "open_outside_range"
CLOSE_OUTSIDE_RANGE = "close_outside_range"
NEGATIVE_VOLUME = "negative_volume"


class BarCheckError(ValueError):
    """A bar failed a sanity check: ``code`` is one of the reason codes above."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def check_price_tolerance(price_tolerance: float) -> float:
    if not 0 <= price_tolerance < 1:
        raise ValueError(f"price_tolerance must be in [0, 1), got {price_tolerance}")
    return price_tolerance


def check_bar(bar: Bar, price_tolerance: float = DEFAULT_PRICE_TOLERANCE) -> Bar:
    """Return ``bar`` if it is plausible, else raise BarCheckError naming the first problem.

    Prices must be positive, high >= low, open and close within [low, high] up to
    ``price_tolerance`` (relative), volume >= 0.
    """
    bad = [f"{name}={getattr(bar, name)!r}" for name in PRICE_COLUMNS if getattr(bar, name) <= 0]
    if bad:
        raise BarCheckError(NON_POSITIVE_PRICE, ", ".join(bad))
    if bar.high < bar.low:
        raise BarCheckError(HIGH_BELOW_LOW, f"high={bar.high!r} < low={bar.low!r}")
    lo = bar.low * (1 - price_tolerance)
    hi = bar.high * (1 + price_tolerance)
    for name, code in (("open", OPEN_OUTSIDE_RANGE), ("close", CLOSE_OUTSIDE_RANGE)):
        value = getattr(bar, name)
        if not lo <= value <= hi:
            raise BarCheckError(
                code,
                f"{name}={value!r} outside [low={bar.low!r}, high={bar.high!r}] "
                f"beyond the {price_tolerance * 100:g}% tolerance",
            )
    if bar.volume < 0:
        raise BarCheckError(NEGATIVE_VOLUME, f"volume={bar.volume!r}")
    return bar
