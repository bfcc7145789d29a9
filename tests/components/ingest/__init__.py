"""Tests of the ingest step and the shared URI helpers."""
