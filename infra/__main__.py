"""Pulumi entry point (``main: infra/`` in Pulumi.yaml): read settings, build, export."""

import sys
from pathlib import Path

import pulumi

# Pulumi runs this directory as a script; make the project root importable so the
# components are imported as the `infra` package, exactly as the tests import them.
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)

from infra.config import load_settings  # noqa: E402
from infra.stack import build_stack  # noqa: E402

for _name, _value in build_stack(load_settings()).items():
    pulumi.export(_name, _value)
