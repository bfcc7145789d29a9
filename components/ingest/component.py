"""KFP wrapper of the ingest step (a Lightweight Python Component).

The body runs in the step's image (or, under ``kfp.local.SubprocessRunner``, in this
virtual environment), where the project is installed; hence the imports inside.
Empty string parameters mean "not given". ``pipeline.crypto_pipeline`` turns the function
into a component with the step's image.
"""

from kfp.dsl import Dataset, Output


def ingest_op(
    source: str,
    lake: str,
    expected_sha256: str,
    column_mapping: str,
    raw: Output[Dataset],
):
    """Store the raw CSV in the lake; ``raw`` is a byte-for-byte copy of it.

    source: https URL, gs:// URI or local path.
    lake: gs://bucket/prefix or a local directory.
    expected_sha256: 64 hex digits; empty for none (the pinned one for the default URL).
    column_mapping: JSON {canonical: source column}; empty for none.
    """
    from components.common.cli import configure_logging
    from components.common.results import publish
    from components.ingest import run

    configure_logging()
    result = run(
        source,
        lake,
        raw_path=raw.path,
        expected_sha256=expected_sha256 or None,
        column_mapping=column_mapping or None,
    )
    publish(result, raw=raw)
