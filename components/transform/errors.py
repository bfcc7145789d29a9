"""Errors of the transform step's parameters and input (a module of their own: ``transform``
and ``dataflow`` both raise them, and neither imports the other)."""

from __future__ import annotations

from components.common.results import ParameterError


class TransformError(Exception):
    """Bad input or parameters; the message says what and where."""


class TransformParameterError(TransformError, ParameterError):
    """A parameter value the transform cannot use; raised before any work."""
