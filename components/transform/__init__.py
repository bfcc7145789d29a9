"""Transform step: parse, validate, feature-engineer and time-split the raw CSV (Beam).

Names are imported on first use: ``check_parameters`` does not load Apache Beam."""

from components.common.lazy import lazy_face

_EXPORTS = {
    "DataflowJobError": "components.transform.dataflow",
    "DataflowOptionsError": "components.transform.dataflow",
    "RUNNERS": "components.transform.parameters",
    "RejectedRowsError": "components.transform.transform",
    "TransformError": "components.transform.errors",
    "TransformParameterError": "components.transform.errors",
    "TransformResult": "components.transform.transform",
    "check_parameters": "components.transform.parameters",
    "dataflow_options": "components.transform.dataflow",
    "run": "components.transform.transform",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_face(__name__, globals(), _EXPORTS)
