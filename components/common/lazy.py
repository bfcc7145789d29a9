"""A package face that imports its modules on first use (PEP 562).

A step's package names what other steps and the pipeline may use. Importing a heavy
module (Apache Beam, pandas, TensorFlow) only when one of its names is used lets the
pipeline check every parameter before the first step in well under a second, through
the same package faces (``components.<step>.check_parameters``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_face(
    package: str, namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose names ``exports`` maps to the
    module defining each (``{"run": "components.train.train", ...}``)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
