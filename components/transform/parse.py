"""Parse and sanity-check one raw CSV line of daily OHLCV data (pure Python, no Beam).

A line is parsed on its own with the ``csv`` module, so quoted fields work but a quoted
field holding a newline does not: the reader hands us the file line by line, and such a
line is rejected as ``malformed_csv`` rather than silently mis-read.

Dates are ISO ``yyyy-mm-dd`` or day-first ``d/m/yyyy`` (the spreadsheet form of the
source file). Numbers may be written like ``1.48E+11``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.common.bars import (
    CLOSE_OUTSIDE_RANGE,
    DEFAULT_PRICE_TOLERANCE,
    HIGH_BELOW_LOW,
    NEGATIVE_VOLUME,
    NON_POSITIVE_PRICE,
    OPEN_OUTSIDE_RANGE,
    BarCheckError,
    check_bar,
    check_price_tolerance,
)
from components.common.features import Bar
from components.common.schema import REQUIRED_COLUMNS, resolve_columns

_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DAY_FIRST_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_PRICE_COLUMNS = ("open", "high", "low", "close")

# Rejection reason codes (the part of ``Rejection.reason`` before the colon). The bar
# sanity checks and their codes live in ``components.common.bars``, shared with the model
# server; they are re-exported here.
MALFORMED_CSV = "malformed_csv"
MISSING_FIELD = "missing_field"
EXTRA_FIELDS = "extra_fields"
BAD_NUMBER = "bad_number"
BAD_DATE = "bad_date"
__all__ = [
    "BAD_DATE",
    "BAD_NUMBER",
    "CLOSE_OUTSIDE_RANGE",
    "DEFAULT_PRICE_TOLERANCE",
    "EXTRA_FIELDS",
    "HIGH_BELOW_LOW",
    "MALFORMED_CSV",
    "MISSING_FIELD",
    "NEGATIVE_VOLUME",
    "NON_POSITIVE_PRICE",
    "OPEN_OUTSIDE_RANGE",
    "ParsedRow",
    "Rejection",
    "RowParser",
    "parse_date",
    "parse_number",
    "split_line",
]


@dataclass(frozen=True)
class ParsedRow:
    """An accepted line: the coin (slug, lower case), its bar and where it came from."""

    line: int
    coin: str
    bar: Bar


@dataclass(frozen=True)
class Rejection:
    """A rejected line. ``reason`` is ``"<code>: <detail>"``."""

    line: int
    reason: str
    raw: str

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


class _Invalid(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def parse_date(text: str) -> dt.date:
    """``yyyy-mm-dd`` or day-first ``d/m/yyyy``; ValueError otherwise."""
    text = text.strip()
    if m := _ISO_DATE.fullmatch(text):
        year, month, day = m.groups()
    elif m := _DAY_FIRST_DATE.fullmatch(text):
        day, month, year = m.groups()
    else:
        raise ValueError(f"unrecognised date {text!r} (expected yyyy-mm-dd or d/m/yyyy)")
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError as exc:
        raise ValueError(f"invalid date {text!r}: {exc}") from None


def parse_number(text: str) -> float:
    """A finite float; accepts ``1.48E+11``. ValueError for anything else."""
    stripped = text.strip()
    # float() also takes "1_000", "nan" and "inf": none of them belongs in price data.
    if "_" in stripped:
        raise ValueError(f"not a number: {text!r}")
    try:
        value = float(stripped)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def split_line(raw: str) -> list[str]:
    """Fields of one CSV line (quotes honoured). csv.Error for an unterminated quote."""
    rows = list(csv.reader([raw], strict=True))
    return rows[0] if rows else []


class RowParser:
    """Parses data lines of one file whose header has been resolved.

    ``columns`` maps canonical names to field indexes (``resolve_columns``);
    ``header_width`` is the number of header fields, which every line must match.
    """

    def __init__(
        self,
        columns: Mapping[str, int],
        header_width: int,
        price_tolerance: float = DEFAULT_PRICE_TOLERANCE,
    ):
        check_price_tolerance(price_tolerance)
        self.columns = {name: columns[name] for name in REQUIRED_COLUMNS}
        self.header_width = header_width
        self.price_tolerance = price_tolerance

    @classmethod
    def from_header(
        cls,
        header_line: str,
        column_mapping: str | Mapping[str, str] | None = None,
        price_tolerance: float = DEFAULT_PRICE_TOLERANCE,
    ) -> RowParser:
        """Build a parser from the raw header line; SchemaError if columns are missing."""
        header = split_line(header_line.rstrip("\r\n"))
        return cls(resolve_columns(header, column_mapping), len(header), price_tolerance)

    def parse(self, line: int, raw: str) -> ParsedRow | Rejection | None:
        """Parse one line. None for a blank line (not data, not a rejection)."""
        text = raw.rstrip("\r\n")
        if not text.strip():
            return None
        try:
            return self._parse(line, text)
        except _Invalid as exc:
            return Rejection(line=line, reason=f"{exc.code}: {exc.detail}", raw=text)

    def _parse(self, line: int, text: str) -> ParsedRow:
        try:
            fields = split_line(text)
        except csv.Error as exc:
            raise _Invalid(MALFORMED_CSV, str(exc)) from None
        self._check_width(fields)
        values = {name: fields[i].strip() for name, i in self.columns.items()}
        empty = [name for name in REQUIRED_COLUMNS if not values[name]]
        if empty:
            raise _Invalid(MISSING_FIELD, f"empty {', '.join(empty)}")
        numbers: dict[str, float] = {}
        for name in (*_PRICE_COLUMNS, "volume"):
            try:
                numbers[name] = parse_number(values[name])
            except ValueError as exc:
                raise _Invalid(BAD_NUMBER, f"{name}: {exc}") from None
        try:
            date = parse_date(values["date"])
        except ValueError as exc:
            raise _Invalid(BAD_DATE, str(exc)) from None
        bar = Bar(date=date, **numbers)
        self._check_sanity(bar)
        return ParsedRow(line=line, coin=values["slug"].lower(), bar=bar)

    def _check_width(self, fields: Sequence[str]) -> None:
        if len(fields) < self.header_width:
            missing = [n for n, i in self.columns.items() if i >= len(fields)]
            detail = f"expected {self.header_width} fields, got {len(fields)}"
            if missing:
                detail += f" (no {', '.join(missing)})"
            raise _Invalid(MISSING_FIELD, detail)
        if len(fields) > self.header_width:
            raise _Invalid(
                EXTRA_FIELDS,
                f"expected {self.header_width} fields, got {len(fields)} "
                "(an unquoted comma in a field?)",
            )

    def _check_sanity(self, bar: Bar) -> None:
        try:
            check_bar(bar, self.price_tolerance)
        except BarCheckError as exc:
            raise _Invalid(exc.code, exc.detail) from None
