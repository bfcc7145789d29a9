"""What every step returns, and how a KFP wrapper records it.

A step function returns a dataclass with these methods. Its KFP wrapper is then the same
two lines for every step: call the function, ``publish(result, **output_artifacts)``.
The CLI prints ``result.to_json()`` with ``--json``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any


class ParameterError(ValueError):
    """A parameter value the step cannot use (CLI exit status 2); raised before any work."""


def raise_for_problems(problems: dict[str, str], error: type[Exception] = ParameterError) -> None:
    """Raise ``error`` with every problem of a step's ``check_parameters`` (``{parameter:
    message}``, each message naming its parameter), if there is any."""
    if problems:
        raise error("; ".join(problems.values()))


def integer_problem(name: str, value: object, minimum: int, maximum: int | None = None) -> str:
    """'' if ``value`` is an int in ``[minimum, maximum]``, else a sentence naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} must be an integer, got {value!r}"
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        return f"{name} must be >= {minimum}{upper}, got {value}"
    return ""


def number_problem(
    name: str, value: object, *, above: float | None = None, at_least: float | None = None,
    at_most: float | None = None, finite: bool = False,
) -> str:  # fmt: skip
    """'' if ``value`` is a real number within the bounds given (and, with ``finite``, not
    infinite), else a sentence naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    if value != value:  # NaN
        return f"{name} must be a number, got nan"
    if finite and value in (float("inf"), float("-inf")):
        return f"{name} must be a finite number, got {value}"
    if above is not None and not value > above:
        return f"{name} must be > {above:g}, got {value}"
    if at_least is not None and value < at_least:
        return f"{name} must be >= {at_least:g}, got {value}"
    if at_most is not None and value > at_most:
        return f"{name} must be <= {at_most:g}, got {value}"
    return ""


#: A model name (train's report, the repository's folder, the server's URL): one folder
#: name of 1-63 letters, digits, '_', '-', '.'; no path, no '..'.
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def model_name_problem(name: object) -> str:
    """'' if ``name`` can name a model, else the sentence saying why."""
    if isinstance(name, str) and MODEL_NAME_PATTERN.match(name) and ".." not in name:
        return ""
    return (
        f"invalid model name {name!r}: use 1-63 letters, digits, '_', '-' or '.', "
        "starting with a letter or digit, without '..' (it becomes a folder name)"
    )


class StepResult:
    """Mixin of the step result dataclasses."""

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-able values (paths as strings)."""
        return _jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]

    def metrics(self) -> dict[str, float]:
        """Numbers for the step's KFP Metrics artifact (none by default)."""
        return {}

    def output_metadata(self) -> dict[str, dict[str, Any]]:
        """``{output name: metadata}`` for the step's KFP output artifacts."""
        return {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def publish(result: StepResult, **artifacts: Any) -> None:
    """Copy ``result`` into KFP output artifacts: the one named ``metrics`` gets
    ``result.metrics()`` (``log_metric``), every other one its ``output_metadata()`` entry."""
    metadata = result.output_metadata()
    for name, artifact in artifacts.items():
        if name == "metrics":
            for key, value in result.metrics().items():
                artifact.log_metric(key, value)
        else:
            artifact.metadata.update(metadata.get(name, {}))
