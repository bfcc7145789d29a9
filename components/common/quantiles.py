"""Quantile levels of the forecast: the contract train, tune, deploy and the pipeline share.

The model forecasts quantiles of tomorrow's log return at ``quantile_levels``; the median
(level 0.5, which must be one of them) is the point forecast. Standard library only: the
pipeline checks a run's levels before any step starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Default levels: the median, the quartiles and the central 90% interval.
DEFAULT_QUANTILE_LEVELS = "0.05,0.25,0.5,0.75,0.95"
#: At most this many levels (every 5% from 0.05 to 0.95 is 19).
MAX_LEVELS = 19
#: Central intervals the scores and the gate report: name -> (lower, upper) level.
INTERVALS: dict[str, tuple[float, float]] = {"50": (0.25, 0.75), "90": (0.05, 0.95)}
#: The interval whose coverage the gate checks.
GATE_INTERVAL = "90"
GATE_METRICS = ("pinball", "mae")
DEFAULT_GATE_METRIC = GATE_METRICS[0]


class QuantileLevelsError(ValueError):
    """The levels are unusable; the message names the problem."""


def parse_quantile_levels(value: str | Iterable[float]) -> tuple[float, ...]:
    """``"0.05,0.5,0.95"`` (or a sequence of numbers) -> ``(0.05, 0.5, 0.95)``.

    Refused: a level not strictly inside (0, 1), unsorted or duplicated levels, no 0.5,
    more than ``MAX_LEVELS``, an entry that is not a number."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if not value.strip() or any(not p for p in parts):
            raise QuantileLevelsError(
                f"quantile_levels {value!r} must be a comma list of numbers, e.g. "
                f"{DEFAULT_QUANTILE_LEVELS}"
            )
    else:
        parts = list(value)
    levels = []
    for part in parts:
        try:
            level = float(part)
        except (TypeError, ValueError):
            raise QuantileLevelsError(f"quantile_levels: {part!r} is not a number") from None
        if not 0.0 < level < 1.0:  # NaN fails too
            raise QuantileLevelsError(f"quantile_levels: {part!r} is not strictly between 0 and 1")
        levels.append(level)
    if len(levels) > MAX_LEVELS:
        raise QuantileLevelsError(
            f"quantile_levels: {len(levels)} levels, at most {MAX_LEVELS} are allowed"
        )
    if len(set(levels)) != len(levels):
        raise QuantileLevelsError(f"quantile_levels {levels} has a level twice")
    if levels != sorted(levels):
        raise QuantileLevelsError(f"quantile_levels {levels} must be in increasing order")
    if 0.5 not in levels:
        raise QuantileLevelsError(
            f"quantile_levels {levels} must include 0.5 (the median is the point forecast)"
        )
    return tuple(levels)


def quantile_levels_problem(value: object, *, gate_metric: object = None) -> str | None:
    """The problem with ``value`` as ``quantile_levels``, or None. With the pinball gate
    the levels must also hold the gate's interval (0.05 and 0.95)."""
    try:
        levels = parse_quantile_levels(value)  # type: ignore[arg-type]
    except QuantileLevelsError as exc:
        return str(exc)
    except TypeError:
        return f"quantile_levels must be a comma list of numbers, got {value!r}"
    if gate_metric == "pinball":
        lower, upper = INTERVALS[GATE_INTERVAL]
        if lower not in levels or upper not in levels:
            return (
                f"quantile_levels {list(levels)} must include {lower} and {upper} with "
                f"gate_metric=pinball (the gate checks the {GATE_INTERVAL}% interval's coverage)"
            )
    return None


def level_key(level: float) -> str:
    """The JSON key of a level: ``0.05`` -> ``"0.05"`` (shortest repr)."""
    return repr(float(level))


def median_index(levels: tuple[float, ...]) -> int:
    return levels.index(0.5)


def quantile_summary(metrics: Mapping[str, float]) -> str:
    """The run summary's line on the quantile forecast (a fixed format)."""

    def pair(prefix: str, ratio_key: str) -> str:
        if ratio_key not in metrics:
            return "unavailable"
        return f"pinball_ratio {metrics[ratio_key]:.4f}, DM p {metrics[f'dm_{prefix}_p_value']:.3f}"

    coverage = metrics.get(f"model_coverage_{GATE_INTERVAL}", float("nan"))
    return (
        f"Against historical quantiles: {pair('historical', 'pinball_ratio')}; "
        f"against GARCH(1,1)-t: {pair('garch', 'garch_pinball_ratio')}; "
        f"{GATE_INTERVAL}% coverage {coverage:.3f}"
    )
