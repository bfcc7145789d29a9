"""Ingest step: move the raw CSV into the data lake, validated and immutable."""
