"""Reading the JSON files steps hand to each other, with errors that name the file."""

import json
import os
from pathlib import Path


def read_json(path: str | os.PathLike, what: str, error: type[Exception] = ValueError):
    """Parse ``path``; a missing file or invalid JSON raises ``error`` naming ``what``.

    A missing file raises FileNotFoundError when ``error`` is ValueError (the default), so
    callers that only distinguish "absent" from "malformed" keep the built-in types.
    """
    path = Path(path)
    if not path.is_file():
        missing = FileNotFoundError if error is ValueError else error
        raise missing(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{what} file {path} is not valid JSON: {exc}") from exc
