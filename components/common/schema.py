"""The raw CSV schema and the user's column mapping, shared by ingest and transform.

The canonical names are those of the Kaggle "Every Cryptocurrency Daily Market Price"
file. A user whose CSV names its columns differently passes a mapping
``{canonical: source_name}`` (as a dict or a JSON string), e.g.
``{"date": "Date", "slug": "Name"}`` for a file headed
``Date,open,high,low,close,volume,Name,Symbol``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from components.common.results import ParameterError

#: Columns every source must provide (after mapping). ``slug`` identifies the coin.
REQUIRED_COLUMNS: tuple[str, ...] = ("slug", "date", "open", "high", "low", "close", "volume")
#: Columns used when present, ignored otherwise.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "symbol",
    "name",
    "ranknow",
    "market",
    "close_ratio",
    "spread",
)
KNOWN_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


class SchemaError(ValueError):
    """The header or the column mapping does not fit the expected schema."""


class ColumnMappingError(SchemaError, ParameterError):
    """The column mapping itself is unusable (not JSON, unknown names): a bad parameter."""


def parse_column_mapping(mapping: str | Mapping[str, str] | None) -> dict[str, str]:
    """Return ``{canonical: source_column}`` from a dict, a JSON string, or nothing.

    Raises ColumnMappingError naming the problem for malformed JSON, non-string values or
    keys that are not canonical column names.
    """
    if mapping is None or mapping == "" or mapping == {}:
        return {}
    if isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except json.JSONDecodeError as exc:
            raise ColumnMappingError(
                f"column mapping is not valid JSON: {exc.msg} (got {mapping!r})"
            ) from exc
    if not isinstance(mapping, Mapping):
        raise ColumnMappingError(
            f"column mapping must be a JSON object, got {type(mapping).__name__}"
        )
    unknown = sorted(k for k in mapping if k not in KNOWN_COLUMNS)
    if unknown:
        raise ColumnMappingError(
            f"column mapping has unknown canonical names: {', '.join(unknown)} "
            f"(known: {', '.join(KNOWN_COLUMNS)})"
        )
    bad = sorted(k for k, v in mapping.items() if not isinstance(v, str) or not v.strip())
    if bad:
        raise ColumnMappingError(
            f"column mapping values must be non-empty column names: {', '.join(bad)}"
        )
    resolved = {str(k): str(v).strip() for k, v in mapping.items()}
    by_column: dict[str, list[str]] = {}
    for canonical, column in resolved.items():
        by_column.setdefault(column.lower(), []).append(canonical)
    shared = {column: names for column, names in by_column.items() if len(names) > 1}
    if shared:
        raise ColumnMappingError(
            "column mapping must be one-to-one: "
            + "; ".join(
                f"{', '.join(sorted(names))} all map to column {column!r}"
                for column, names in sorted(shared.items())
            )
        )
    return resolved


def resolve_columns(
    header: Sequence[str], mapping: str | Mapping[str, str] | None = None
) -> dict[str, int]:
    """Map each canonical column to its index in ``header``.

    Header names are matched after stripping whitespace and a UTF-8 BOM, case-insensitively.
    Raises SchemaError("missing columns: close, date ...") when a required column is absent,
    and when two canonical names would be read from one column (e.g. ``{"close": "open"}``:
    close mapped onto the column open is read from). An optional column whose own name a
    mapping gives to another canonical column is not read.
    """
    cleaned = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
    index = {name: i for i, name in reversed(list(enumerate(cleaned)))}
    resolved_mapping = parse_column_mapping(mapping)
    claimed = {v.lower() for v in resolved_mapping.values()}
    resolved: dict[str, int] = {}
    missing: list[str] = []
    for canonical in KNOWN_COLUMNS:
        source = resolved_mapping.get(canonical, canonical).lower()
        if (
            canonical not in resolved_mapping
            and canonical in OPTIONAL_COLUMNS
            and source in claimed
        ):
            continue  # an optional column's default name taken by the mapping: not read
        if source in index:
            resolved[canonical] = index[source]
        elif canonical in REQUIRED_COLUMNS:
            missing.append(
                canonical
                if canonical not in resolved_mapping
                else f"{canonical} (mapped from {resolved_mapping[canonical]!r})"
            )
    if missing:
        raise SchemaError(
            f"missing columns: {', '.join(sorted(missing))}; header is: {', '.join(header)}. "
            'Pass a column mapping such as \'{"date": "Date", "slug": "Name"}\' '
            "if your file names them differently."
        )
    readers: dict[int, list[str]] = {}
    for canonical, position in resolved.items():
        readers.setdefault(position, []).append(canonical)
    shared = {i: names for i, names in readers.items() if len(names) > 1}
    if shared:
        raise SchemaError(
            "the column mapping must be one-to-one, but "
            + "; ".join(
                f"{', '.join(names)} would all be read from column {header[i].strip()!r}"
                for i, names in sorted(shared.items())
            )
            + f"; header is: {', '.join(header)}. Map each canonical name to its own column."
        )
    return resolved
