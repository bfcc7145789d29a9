"""Transform step: parse, validate, feature-engineer and time-split the raw CSV (Beam)."""

from components.transform.dataflow import DataflowJobError, DataflowOptionsError, dataflow_options
from components.transform.errors import TransformError, TransformParameterError
from components.transform.transform import RUNNERS, RejectedRowsError, TransformResult, run

__all__ = [
    "DataflowJobError",
    "DataflowOptionsError",
    "RUNNERS",
    "RejectedRowsError",
    "TransformError",
    "TransformParameterError",
    "TransformResult",
    "dataflow_options",
    "run",
]
