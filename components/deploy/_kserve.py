"""The parts of KServe's Python ModelServer the model server uses, imported in one place.

``kserve.model_server`` parses ``sys.argv`` with its own argument parser when it is first
imported (its flags become the ModelServer's defaults). Our CLI has its own flags, and an
abbreviation of one of KServe's (``--model`` for ``--model_name``) would make that parse
exit the process, so every KServe import goes through this module, which hides the
command line from it.
"""

from __future__ import annotations

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    from kserve import Model, ModelServer
    from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
    from kserve.model_repository import ModelRepository
    from kserve.protocol.rest.server import RESTServer
    from kserve.protocol.rest.v1_endpoints import V1Endpoints
finally:
    sys.argv = _argv

__all__ = [
    "InvalidInput",
    "Model",
    "ModelNotFound",
    "ModelNotReady",
    "ModelRepository",
    "ModelServer",
    "RESTServer",
    "V1Endpoints",
]
