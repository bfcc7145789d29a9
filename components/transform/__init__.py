"""Transform step: parse, validate, feature-engineer and time-split the raw CSV (Beam)."""

from components.transform.errors import RejectedRowsError, TransformError, TransformParameterError
from components.transform.transform import RUNNERS, TransformResult, run

__all__ = [
    "RUNNERS",
    "RejectedRowsError",
    "TransformError",
    "TransformParameterError",
    "TransformResult",
    "run",
]
