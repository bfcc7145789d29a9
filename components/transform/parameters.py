"""The transform step's parameter checks (numpy at most, no Apache Beam: the pipeline checks
a run's parameters before any step)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence

from components.common.results import integer_problem, number_problem
from components.common.schema import ColumnMappingError, parse_column_mapping
from components.transform.errors import TransformParameterError
from components.transform.series import parse_split

RUNNERS = ("local", "dataflow")
#: A GCP label (Dataflow rejects the whole job for any other).
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
#: Shards per split: each is a file (and a Beam output) per split; more is a typo.
MAX_SHARDS = 1_000


def parse_coins(coins: str | Sequence[str]) -> frozenset[str] | None:
    """``"all"`` → None (every coin); ``"bitcoin,Ethereum"`` → lower-case slugs."""
    items = coins.split(",") if isinstance(coins, str) else list(coins)
    slugs = frozenset(c.strip().lower() for c in items if c.strip())
    if not slugs:
        raise TransformParameterError(
            "coins must be 'all' or a comma-separated list of slugs, got nothing"
        )
    return None if slugs == {"all"} else slugs


def parse_as_of(as_of: str | dt.date | None) -> dt.date:
    """The run's date: ``as_of`` (ISO date) or today in UTC."""
    if as_of is None or as_of == "":
        return dt.datetime.now(dt.UTC).date()
    if isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(str(as_of).strip())
    except ValueError:
        raise TransformParameterError(
            f"as_of must be an ISO date yyyy-mm-dd, got {as_of!r}"
        ) from None


def check_parameters(
    *,
    coins: object = None,
    split: object = None,
    max_rejected_fraction: object = None,
    column_mapping: str | Mapping[str, str] | None = None,
    runner: object = None,
    num_shards: object = None,
    price_tolerance: object = None,
    max_daily_move: object = None,
    max_intraday_range: object = None,
    as_of: object = None,
    warn_usable_fraction: object = None,
    min_usable_fraction: object = None,
) -> dict[str, str]:
    """``{parameter: problem}`` for the given (not None) parameters of ``transform.run``."""
    problems: dict[str, str] = {}
    if coins is not None:
        try:
            parse_coins(coins)  # type: ignore[arg-type]
        except (TransformParameterError, AttributeError, TypeError):
            problems["coins"] = (
                f"coins must be 'all' or a comma-separated list of slugs, got {coins!r}"
            )
    if split is not None:
        try:
            parse_split(split)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            problems["split"] = str(exc)
    if column_mapping is not None:
        try:
            parse_column_mapping(column_mapping)
        except ColumnMappingError as exc:
            problems["column_mapping"] = str(exc)
    if runner is not None and runner not in RUNNERS:
        problems["runner"] = f"unknown runner {runner!r}; expected one of {', '.join(RUNNERS)}"
    if as_of is not None:
        try:
            parse_as_of(as_of)  # type: ignore[arg-type]
        except TransformParameterError as exc:
            problems["as_of"] = str(exc)
    checks = {
        "max_rejected_fraction": max_rejected_fraction is not None
        and number_problem("max_rejected_fraction", max_rejected_fraction, at_least=0, at_most=1),
        "num_shards": num_shards is not None
        and integer_problem("num_shards", num_shards, 1, MAX_SHARDS),
        "price_tolerance": price_tolerance is not None
        and _price_tolerance_problem(price_tolerance),
        "max_daily_move": max_daily_move is not None
        and number_problem("max_daily_move", max_daily_move, above=1),
        "max_intraday_range": max_intraday_range is not None
        and number_problem("max_intraday_range", max_intraday_range, above=1),
        "warn_usable_fraction": warn_usable_fraction is not None
        and number_problem("warn_usable_fraction", warn_usable_fraction, at_least=0, at_most=1),
        "min_usable_fraction": min_usable_fraction is not None
        and number_problem("min_usable_fraction", min_usable_fraction, at_least=0, at_most=1),
    }
    problems.update({name: problem for name, problem in checks.items() if problem})
    if (
        "warn_usable_fraction" not in problems
        and "min_usable_fraction" not in problems
        and warn_usable_fraction is not None
        and min_usable_fraction is not None
        and min_usable_fraction > warn_usable_fraction  # type: ignore[operator]
    ):
        problems["min_usable_fraction"] = (
            f"min_usable_fraction ({min_usable_fraction}) must not exceed "
            f"warn_usable_fraction ({warn_usable_fraction})"
        )
    return problems


def _price_tolerance_problem(value: object) -> str:
    problem = number_problem("price_tolerance", value, at_least=0)
    if not problem and not value < 1:  # type: ignore[operator]
        problem = f"price_tolerance must be in [0, 1), got {value}"
    return problem


def parse_dataflow_labels(labels: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """The Dataflow job's labels from the pipeline's ``dataflow_labels``: a JSON object
    ``{"key": "value"}`` of valid GCP labels (or that mapping); ``""`` or None: none.
    TransformParameterError naming ``dataflow_labels`` otherwise."""
    if labels is None or labels == "":
        return None
    if isinstance(labels, str):
        try:
            labels = json.loads(labels)
        except ValueError:
            raise TransformParameterError(
                f'dataflow_labels must be a JSON object {{"key": "value"}}, got {labels!r}'
            ) from None
    if not isinstance(labels, Mapping):
        raise TransformParameterError(
            f'dataflow_labels must be a JSON object {{"key": "value"}}, got {labels!r}'
        )
    bad = [
        f"{key}={value}"
        for key, value in labels.items()
        if not (
            isinstance(value, str)
            and LABEL_KEY.fullmatch(str(key))
            and LABEL_VALUE.fullmatch(value)
        )
    ]
    if bad:
        raise TransformParameterError(
            f"dataflow_labels: {', '.join(bad)} not valid GCP labels (lower-case letters, "
            "digits, _ and -; keys start with a letter; at most 63 characters)"
        )
    return dict(labels)


def check_dataflow_parameters(*, labels: object = None, **others: object) -> dict[str, str]:
    """``{parameter: problem}`` of the Dataflow settings (``dataflow_options``'s parameters)
    that can be checked without Beam: the labels. Beam's own validator checks the others
    when the transform builds its options."""
    try:
        parse_dataflow_labels(labels)  # type: ignore[arg-type]
    except TransformParameterError as exc:
        return {"labels": str(exc)}
    return {}
