"""KFP wrapper of the ingest step (a Lightweight Python Component).

The body runs in the step's image (or, under ``kfp.local.SubprocessRunner``, in this
virtual environment), where the project is installed; hence the import inside.
Empty string parameters mean "not given".
"""

from kfp import dsl

from components.images import image_for


@dsl.component(base_image=image_for("ingest"), install_kfp_package=False)
def ingest_op(
    source: str,
    lake: str,
    expected_sha256: str,
    column_mapping: str,
    raw: dsl.Output[dsl.Dataset],
):
    """Store the raw CSV in the lake; ``raw`` is a byte-for-byte copy of it.

    source: https URL, gs:// URI or local path; empty for the pinned default URL.
    lake: gs://bucket/prefix or a local directory.
    expected_sha256: 64 hex digits; empty for none (the pinned one for the default URL).
    column_mapping: JSON {canonical: source column}; empty for none.
    """
    from components.ingest.ingest import DEFAULT_SOURCE, ingest

    result = ingest(
        source or DEFAULT_SOURCE,
        lake,
        expected_sha256=expected_sha256 or None,
        column_mapping=column_mapping or None,
        output_path=raw.path,
    )
    raw.metadata.update(
        {
            "lake_uri": result.lake_uri,
            "sha256": result.sha256,
            "bytes": result.bytes,
            "rows": result.rows,
            "source": result.source,
            "stored_new": result.stored_new,
            "fetched_at": result.fetched_at,
        }
    )
    print(
        ("stored " if result.stored_new else "already in the lake: ")
        + f"{result.lake_uri} ({result.rows} rows, sha256 {result.sha256})"
    )
