"""What every step returns, and how a KFP wrapper records it.

A step function returns a dataclass with these methods. Its KFP wrapper is then the same
two lines for every step: call the function, ``publish(result, **output_artifacts)``.
The CLI prints ``result.to_json()`` with ``--json``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any


class ParameterError(ValueError):
    """A parameter value the step cannot use (CLI exit status 2); raised before any work."""


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
