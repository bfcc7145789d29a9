"""Unit tests of the line parser: formats it must read and every rejection reason."""

from __future__ import annotations

import datetime as dt

import pytest

from components.common.schema import SchemaError
from components.transform import parse
from components.transform.parse import ParsedRow, Rejection, RowParser, parse_date, parse_number
from tests.components.transform.synthetic import HEADER

GOOD = "bitcoin,BTC,Bitcoin,28/4/2013,1,135.3,135.98,132.1,134.21,0,1500520000,0.5438,3.88"


@pytest.fixture
def parser() -> RowParser:
    return RowParser.from_header(HEADER)


def test_day_first_date_from_the_spreadsheet_file(parser: RowParser) -> None:
    row = parser.parse(2, GOOD)
    assert isinstance(row, ParsedRow)
    assert row.line == 2
    assert row.coin == "bitcoin"
    assert row.bar.date == dt.date(2013, 4, 28)
    assert (row.bar.open, row.bar.high, row.bar.low, row.bar.close, row.bar.volume) == (
        135.3,
        135.98,
        132.1,
        134.21,
        0.0,
    )


def test_iso_date(parser: RowParser) -> None:
    row = parser.parse(2, GOOD.replace("28/4/2013", "2013-04-28"))
    assert row.bar.date == dt.date(2013, 4, 28)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-03-25", dt.date(2018, 3, 25)),
        ("2018-3-5", dt.date(2018, 3, 5)),
        ("25/3/2018", dt.date(2018, 3, 25)),
        ("05/03/2018", dt.date(2018, 3, 5)),  # day first: 5 March, not 3 May
        (" 1/12/2017 ", dt.date(2017, 12, 1)),
    ],
)
def test_parse_date_forms(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["31/2/2018", "2018-13-01", "March 3 2018", "3/25/18", ""])
def test_parse_date_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


def test_e_notation_numbers(parser: RowParser) -> None:
    # The shared file has volumes such as 1.48E+11 (it went through a spreadsheet).
    row = parser.parse(7, GOOD.replace(",0,1500520000,", ",1.48E+11,1.5E+9,"))
    assert row.bar.volume == 148_000_000_000.0
    assert parse_number(" 2.5e-3 ") == 0.0025


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1_000", "1,5", "abc", ""])
def test_parse_number_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_number(text)


def test_quoted_fields_with_commas(parser: RowParser) -> None:
    raw = 'bitcoin,BTC,"Bitcoin, the first",28/4/2013,1,"135.3",135.98,132.1,134.21,0,1,0.5,3.88'
    row = parser.parse(3, raw)
    assert isinstance(row, ParsedRow)
    assert row.bar.open == 135.3


def test_windows_line_ending_and_case_of_slug(parser: RowParser) -> None:
    row = parser.parse(3, GOOD.replace("bitcoin", " Bitcoin ") + "\r\n")
    assert row.coin == "bitcoin"
    assert row.bar.volume == 0.0


@pytest.mark.parametrize("raw", ["", "\n", "   \r\n", "\t"])
def test_blank_lines_are_skipped_not_rejected(parser: RowParser, raw: str) -> None:
    assert parser.parse(9, raw) is None


def test_column_mapping_and_reordered_header() -> None:
    header = "Date,Open,High,Low,Close,Volume,Name,Symbol"
    parser = RowParser.from_header(header, '{"date": "Date", "slug": "Name"}')
    row = parser.parse(2, "2018-03-25,10,12,9,11,5E+3,ETHEREUM,ETH")
    assert row.coin == "ethereum"
    assert row.bar == parse.Bar(dt.date(2018, 3, 25), 10.0, 12.0, 9.0, 11.0, 5000.0)


def test_header_without_required_columns_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="missing columns: close, date"):
        RowParser.from_header("slug,open,high,low,volume")


def _mutate(**changes: str) -> str:
    fields = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    fields.update(changes)
    return ",".join(fields.values())


@pytest.mark.parametrize(
    ("raw", "code", "detail"),
    [
        (_mutate(close=""), parse.MISSING_FIELD, "empty close"),
        (",".join(GOOD.split(",")[:8]), parse.MISSING_FIELD, "got 8"),
        (GOOD + ",extra", parse.EXTRA_FIELDS, "got 14"),
        (_mutate(high="n/a"), parse.BAD_NUMBER, "high"),
        (_mutate(volume="NaN"), parse.BAD_NUMBER, "volume"),
        (_mutate(date="2013-02-30"), parse.BAD_DATE, "2013-02-30"),
        (_mutate(date="Apr 28 2013"), parse.BAD_DATE, "Apr 28 2013"),
        (_mutate(low="0"), parse.NON_POSITIVE_PRICE, "low=0.0"),
        (_mutate(open="-1"), parse.NON_POSITIVE_PRICE, "open=-1.0"),
        (
            _mutate(high="130", low="132.1", open="131", close="131"),
            parse.HIGH_BELOW_LOW,
            "high=130.0",
        ),
        (_mutate(close="140"), parse.CLOSE_OUTSIDE_RANGE, "close=140.0"),
        (_mutate(open="120"), parse.OPEN_OUTSIDE_RANGE, "open=120.0"),
        (_mutate(volume="-5"), parse.NEGATIVE_VOLUME, "volume=-5.0"),
        (
            'bitcoin,BTC,"Bitcoin,28/4/2013,1,135.3,135.98,132.1,134.21,0,1,0.5,3.88',
            parse.MALFORMED_CSV,
            "",
        ),
    ],
)
def test_each_rejection_reason(parser: RowParser, raw: str, code: str, detail: str) -> None:
    result = parser.parse(42, raw)
    assert isinstance(result, Rejection), result
    assert result.line == 42
    assert result.code == code
    assert detail in result.reason
    assert result.raw == raw


def test_price_tolerance_is_relative_and_a_parameter() -> None:
    # close 1% above high: inside the default 1% tolerance, outside a 0.5% one.
    raw = _mutate(high="100", low="90", open="95", close="100.9")
    assert isinstance(RowParser.from_header(HEADER).parse(2, raw), ParsedRow)
    strict = RowParser.from_header(HEADER, price_tolerance=0.005).parse(2, raw)
    assert isinstance(strict, Rejection) and strict.code == parse.CLOSE_OUTSIDE_RANGE
    assert "0.5% tolerance" in strict.reason
    below = RowParser.from_header(HEADER).parse(
        2, _mutate(high="100", low="90", open="95", close="89.2")
    )
    assert isinstance(below, ParsedRow)  # 89.2 >= 90 * 0.99


def test_zero_volume_is_accepted(parser: RowParser) -> None:
    # The source did not record volume before late 2013: 0 is data, not an error.
    assert parser.parse(2, GOOD).bar.volume == 0.0


CHUNK_LINES = [
    GOOD,
    "",
    "   ",
    GOOD.replace("28/4/2013", "2013-04-29") + "\r",
    GOOD.replace("bitcoin", "Ethereum", 1),
    GOOD.replace("135.98", "1.48E+2"),
    GOOD.replace("135.98", " 136 "),
    GOOD.replace("135.98", "1_36"),
    GOOD.replace("135.98", "inf"),
    GOOD.replace("135.98", ""),
    GOOD.replace(",0,", ",-1,"),
    GOOD.replace("28/4/2013", "31/4/2013"),
    GOOD.replace("28/4/2013", "28-4-2013"),
    GOOD.replace("134.21", "140"),
    GOOD.replace("135.3", "100"),
    GOOD + ",extra",
    "bitcoin,BTC",
    '"bit,coin",BTC,Bitcoin,1/5/2013,1,135.3,135.98,132.1,134.21,0,1,0.5,3',
    'bitcoin,BTC,"Bitcoin,1/5/2013,1,135.3,135.98,132.1,134.21,0,1,0.5,3',
    GOOD.replace("BTC", "B\rTC"),
    GOOD.replace("BTC", "B\x00TC"),
    GOOD.replace("bitcoin", " Bitcoin ", 1),
    GOOD.replace("bitcoin", "", 1),
    GOOD.replace("135.3", "0"),
]


@pytest.mark.parametrize("tolerance", [0.0, 0.01])
def test_parse_chunk_gives_the_verdicts_of_parse(tolerance: float) -> None:
    parser = RowParser.from_header(HEADER, price_tolerance=tolerance)
    result = parser.parse_chunk(10, CHUNK_LINES)
    one_by_one = [parser.parse(10 + i, text) for i, text in enumerate(CHUNK_LINES)]
    rows = [r for r in one_by_one if isinstance(r, ParsedRow)]
    assert result.rejections == [r for r in one_by_one if isinstance(r, Rejection)]
    assert result.blank_lines == sum(r is None for r in one_by_one) == 2
    assert result.input_rows == len(CHUNK_LINES) - 2
    got = sorted(
        (int(line), coin, int(day), o, h, lo, c, v)
        for coin, b in result.blocks.items()
        for line, day, o, h, lo, c, v in zip(
            b.line, b.day, b.open, b.high, b.low, b.close, b.volume, strict=True
        )
    )
    epoch = dt.date(1970, 1, 1).toordinal()
    want = sorted(
        (r.line, r.coin, r.bar.date.toordinal() - epoch, r.bar.open, r.bar.high, r.bar.low)
        + (r.bar.close, r.bar.volume)
        for r in rows
    )
    assert got == want
    assert len(rows) >= 6
