"""Ingest step: move the raw CSV into the data lake, validated and immutable."""

from components.ingest.ingest import (
    DEFAULT_SHA256,
    DEFAULT_SOURCE,
    IngestError,
    IngestResult,
    check_parameters,
    expected_checksum,
    run,
)

__all__ = [
    "DEFAULT_SHA256",
    "DEFAULT_SOURCE",
    "IngestError",
    "IngestResult",
    "check_parameters",
    "expected_checksum",
    "run",
]
