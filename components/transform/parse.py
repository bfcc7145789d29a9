"""Parse and sanity-check raw CSV lines of daily OHLCV data (pure Python and numpy, no Beam).

A line is parsed on its own with the ``csv`` module, so quoted fields work but a quoted
field holding a newline does not: the reader hands us the file line by line, and such a
line is rejected as ``malformed_csv`` rather than silently mis-read.

``RowParser.parse`` is the definition, one line at a time. ``RowParser.parse_chunk`` gives
the same verdicts for a chunk of lines in bulk: lines that are plainly well-formed (no
quote, carriage return or NUL, the header's number of fields) are split, converted and
checked column-wise; every line that fails any check, or is not plain, goes through
``parse``, so rejection reasons and texts are the definition's.

Dates are ISO ``yyyy-mm-dd`` or day-first ``d/m/yyyy`` (the spreadsheet form of the
source file). Numbers may be written like ``1.48E+11``.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

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
from components.common.features import Bar, epoch_days
from components.common.schema import REQUIRED_COLUMNS, resolve_columns

#: Default largest intraday range ``high / low`` a day may have (``implausible_range``).
#: The shared file's widest day is veritaseum on 2017-06-11, high/low = 333,501 (its
#: low of 0.000337 is a data error of the source, but a real line of it): 1e6 keeps every
#: real day of the shared file while refusing values off by many orders of magnitude,
#: whose logarithms would dominate the normalisation statistics.
DEFAULT_MAX_INTRADAY_RANGE = 1e6

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
IMPLAUSIBLE_RANGE = "implausible_range"
FUTURE_DATE = "future_date"
__all__ = [
    "BAD_DATE",
    "BAD_NUMBER",
    "CLOSE_OUTSIDE_RANGE",
    "DEFAULT_PRICE_TOLERANCE",
    "EXTRA_FIELDS",
    "FUTURE_DATE",
    "HIGH_BELOW_LOW",
    "IMPLAUSIBLE_RANGE",
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


_BLOCK_COLUMNS = ("line", "day", "open", "high", "low", "close", "volume")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclass
class BarBlock:
    """Accepted rows of one coin as columns: raw line numbers, dates (int days since
    1970-01-01) and prices, in any order (``series.process_coin`` sorts them)."""

    line: np.ndarray
    day: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.line)

    def take(self, index: np.ndarray) -> BarBlock:
        return BarBlock(*(getattr(self, name)[index] for name in _BLOCK_COLUMNS))

    @classmethod
    def concat(cls, blocks: Iterable[BarBlock]) -> BarBlock:
        blocks = list(blocks)
        if not blocks:
            return cls.from_rows([])
        if len(blocks) == 1:
            return blocks[0]
        return cls(*(np.concatenate([getattr(b, n) for b in blocks]) for n in _BLOCK_COLUMNS))

    @classmethod
    def from_rows(cls, rows: Iterable[ParsedRow]) -> BarBlock:
        rows = list(rows)
        bars = [r.bar for r in rows]
        return cls(
            np.array([r.line for r in rows], dtype=np.int64),
            epoch_days([b.date for b in bars]),
            *(
                np.array([getattr(b, n) for b in bars], dtype=np.float64)
                for n in _BLOCK_COLUMNS[2:]
            ),
        )


@dataclass
class ChunkResult:
    """What ``RowParser.parse_chunk`` made of a chunk of lines."""

    #: Accepted rows per coin slug.
    blocks: dict[str, BarBlock] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    #: Lines that are not blank, counted from the text alone (before any verdict).
    input_rows: int = 0
    blank_lines: int = 0

    def counts(self) -> dict:
        """Tallies for ``stats.json``; summed over chunks by ``merge_counts``."""
        return {
            "input_rows": self.input_rows,
            "accepted_rows": sum(len(b) for b in self.blocks.values()),
            "rejected_rows": len(self.rejections),
            "blank_lines": self.blank_lines,
            "rejected_reasons": Counter(r.code for r in self.rejections),
            "coins_in_input": Counter({coin: len(b) for coin, b in self.blocks.items()}),
        }


def empty_counts() -> dict:
    return ChunkResult().counts()


def merge_counts(total: dict, other: dict) -> dict:
    """Add the tallies ``other`` to ``total`` (in place) and return it."""
    for key, value in other.items():
        total[key] = total[key] + value
    return total


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
        max_range: float = DEFAULT_MAX_INTRADAY_RANGE,
        max_date: dt.date | None = None,
    ):
        check_price_tolerance(price_tolerance)
        if not max_range > 1:  # also refuses NaN; inf turns the check off
            raise ValueError(f"max_range must be > 1, got {max_range}")
        self.columns = {name: columns[name] for name in REQUIRED_COLUMNS}
        self.header_width = header_width
        self.price_tolerance = price_tolerance
        self.max_range = max_range
        #: The last date a line may have (the run's date); None: no limit.
        self.max_date = max_date
        self._max_day = (
            np.iinfo(np.int64).max if max_date is None else max_date.toordinal() - _EPOCH_ORDINAL
        )

    @classmethod
    def from_header(
        cls,
        header_line: str,
        column_mapping: str | Mapping[str, str] | None = None,
        price_tolerance: float = DEFAULT_PRICE_TOLERANCE,
        max_range: float = DEFAULT_MAX_INTRADAY_RANGE,
        max_date: dt.date | None = None,
    ) -> RowParser:
        """Build a parser from the raw header line; SchemaError if columns are missing or
        the mapping sends two canonical names to one column."""
        header = split_line(header_line.rstrip("\r\n"))
        return cls(
            resolve_columns(header, column_mapping),
            len(header),
            price_tolerance,
            max_range=max_range,
            max_date=max_date,
        )

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
        if self.max_date is not None and date > self.max_date:
            raise _Invalid(
                FUTURE_DATE,
                f"{date.isoformat()} is after the run's date {self.max_date.isoformat()}",
            )
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
        if not bar.high <= bar.low * self.max_range:
            raise _Invalid(
                IMPLAUSIBLE_RANGE,
                f"high/low = {bar.high / bar.low:.6g} (high={bar.high!r}, low={bar.low!r}) "
                f"beyond the limit of {self.max_range:g}",
            )

    def parse_chunk(self, first_line: int, lines: Sequence[str]) -> ChunkResult:
        """Parse consecutive lines, the first of them numbered ``first_line``.

        The same verdicts, reasons and values as ``parse`` on each line, computed in bulk.
        """
        result = ChunkResult()
        if not lines:
            return result
        text = "\n".join(lines)
        if "\r" in text:
            lines = list(map(str.rstrip, lines, itertools.repeat("\r\n")))
        result.input_rows = sum(map(bool, map(str.strip, lines)))
        result.blank_lines = len(lines) - result.input_rows
        commas = np.fromiter(map(str.count, lines, itertools.repeat(",")), np.int64, len(lines))
        plain = commas == self.header_width - 1
        if any(c in text for c in ('"', "\r", "\x00")):
            plain &= ~np.fromiter(
                (('"' in t) or ("\r" in t) or ("\x00" in t) for t in lines), bool, len(lines)
            )
        index = np.flatnonzero(plain)
        accepted: list[tuple[np.ndarray, dict]] = []
        if len(index):
            chosen = [lines[i] for i in index.tolist()]
            ok, columns = self._parse_plain(chosen)
            accepted.append((index[ok], {name: col[ok] for name, col in columns.items()}))
            plain[index[~ok]] = False
        rows: list[ParsedRow] = []
        for i in np.flatnonzero(~plain).tolist():
            parsed = self.parse(first_line + i, lines[i])
            if isinstance(parsed, ParsedRow):
                rows.append(parsed)
            elif isinstance(parsed, Rejection):
                result.rejections.append(parsed)
        if rows:
            block = BarBlock.from_rows(rows)
            columns = {name: getattr(block, name) for name in _BLOCK_COLUMNS[1:]}
            columns["coin"] = np.array([r.coin for r in rows], dtype=object)
            accepted.append((block.line - first_line, columns))
        if accepted:
            offsets = np.concatenate([a[0] for a in accepted])
            merged = {n: np.concatenate([a[1][n] for a in accepted]) for n in accepted[0][1]}
            coins, which = np.unique(merged.pop("coin").astype(str), return_inverse=True)
            order = np.argsort(which, kind="stable")
            bounds = np.searchsorted(which[order], np.arange(len(coins) + 1))
            for k, coin in enumerate(coins.tolist()):
                part = order[bounds[k] : bounds[k + 1]]
                result.blocks[coin] = BarBlock(
                    offsets[part].astype(np.int64) + first_line,
                    *(merged[n][part] for n in _BLOCK_COLUMNS[1:]),
                )
        return result

    def _parse_plain(self, lines: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Column-wise parse of lines with exactly ``header_width`` unquoted fields.

        Returns which lines passed every check of ``parse`` and their columns; the others
        are left to ``parse`` for the verdict.
        """
        n = len(lines)
        width = self.header_width
        fields = ",".join(lines).split(",")
        ok = np.ones(n, dtype=bool)
        values = {name: list(map(str.strip, fields[i::width])) for name, i in self.columns.items()}
        for name in REQUIRED_COLUMNS:
            column = values[name]
            if "" in column:
                ok &= np.fromiter(map(bool, column), bool, n)
        numbers: dict[str, np.ndarray] = {}
        for name in (*_PRICE_COLUMNS, "volume"):
            column = values[name]
            if "_" in "".join(column):
                ok &= ~np.fromiter(("_" in v for v in column), bool, n)
            try:
                numbers[name] = np.fromiter(map(float, column), np.float64, n)
            except ValueError:
                numbers[name] = np.fromiter(map(_float_or_nan, column), np.float64, n)
            ok &= np.isfinite(numbers[name])
        cache = {}
        for text in set(values["date"]):
            try:
                cache[text] = parse_date(text).toordinal() - _EPOCH_ORDINAL
            except ValueError:
                cache[text] = _NO_DAY
        day = np.fromiter(map(cache.__getitem__, values["date"]), np.int64, n)
        ok &= (day != _NO_DAY) & (day <= self._max_day)
        o, h, lo_, c, v = (numbers[name] for name in (*_PRICE_COLUMNS, "volume"))
        with np.errstate(invalid="ignore"):
            ok &= (o > 0) & (h > 0) & (lo_ > 0) & (c > 0) & (h >= lo_)
            low_limit = lo_ * (1 - self.price_tolerance)
            high_limit = h * (1 + self.price_tolerance)
            ok &= (low_limit <= o) & (o <= high_limit) & (low_limit <= c) & (c <= high_limit)
            ok &= v >= 0
            ok &= h <= lo_ * self.max_range
        coin = np.array(list(map(str.lower, values["slug"])), dtype=object)
        return ok, {"day": day, **numbers, "coin": coin}


_NO_DAY = np.iinfo(np.int64).min


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
