"""The git revision of the working tree the pipeline is compiled from (lineage and the
names of uploaded pipeline versions)."""

from __future__ import annotations

import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = "unknown"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def git_revision() -> str:
    """``<12-digit commit>``, with ``-dirty`` when tracked files have uncommitted changes;
    ``unknown`` outside a git checkout (e.g. in an image)."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return f"{commit}-dirty" if dirty else commit
