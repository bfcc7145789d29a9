"""Transform step: parse, validate, feature-engineer and time-split the raw CSV (Beam)."""

from components.transform.errors import TransformError, TransformParameterError
from components.transform.transform import RUNNERS, RejectedRowsError, TransformResult, run

__all__ = [
    "RUNNERS",
    "RejectedRowsError",
    "TransformError",
    "TransformParameterError",
    "TransformResult",
    "run",
]
