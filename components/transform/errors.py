"""Errors of the transform step (a module of their own: ``transform`` and ``dataflow``
both raise them, and neither imports the other)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.common.results import ParameterError

if TYPE_CHECKING:
    from components.transform.transform import TransformResult


class TransformError(Exception):
    """Bad input or parameters; the message says what and where."""


class TransformParameterError(TransformError, ParameterError):
    """A parameter value the transform cannot use; raised before any work."""


class RejectedRowsError(TransformError):
    """Too many rows were rejected. The outputs, rejected rows included, were written."""

    def __init__(self, message: str, result: TransformResult):
        super().__init__(message)
        self.result = result
