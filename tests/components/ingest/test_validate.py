"""Validation before storing: pure functions, no lake involved."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from components.common.results import ParameterError
from components.ingest.ingest import (
    DEFAULT_SHA256,
    DEFAULT_SOURCE,
    IngestError,
    expected_checksum,
    validate_csv,
)

from .conftest import MAPPING, mapped_csv


def test_full_shared_file_has_29999_rows(crypto_csv: Path) -> None:
    # No trailing newline after the last row: it must still count.
    data = crypto_csv.read_bytes()
    assert not data.endswith(b"\n")
    assert validate_csv(data) == 29_999


def test_blank_lines_and_crlf_are_not_rows(sample_bytes: bytes) -> None:
    crlf = sample_bytes.replace(b"\n", b"\r\n") + b"\r\n\r\n"
    assert validate_csv(crlf) == 40
    assert validate_csv(b"\xef\xbb\xbf" + sample_bytes) == 40  # UTF-8 BOM


def test_quoted_field_with_newline_is_one_row(sample_bytes: bytes) -> None:
    header = sample_bytes.split(b"\n")[0]
    row = b'"bit\ncoin",BTC,"Bitcoin, the first",28/4/2013,1,1,2,0.5,1.5,0,0,0.5,1.5'
    assert validate_csv(header + b"\n" + row + b"\n") == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty file (0 bytes)"),
        (b"\n \r\n", "empty file"),
        (b"<!DOCTYPE html>\n<html><body>Sign in</body></html>", "got HTML, not CSV"),
        (b"\n  <html lang='en'><head></head></html>", "got HTML, not CSV"),
        (gzip.compress(b"slug,date\n"), "gzip-compressed"),
        (b"slug,date\x00,open", "binary data, not CSV (NUL byte at offset 9)"),
        (b"slug,date,\xff\xfe\x80 garbled", "not a UTF-8 text CSV: undecodable byte at offset 10"),
    ],
    ids=["zero-bytes", "whitespace", "html", "html-indented", "gzip", "nul", "not-utf8"],
)
def test_rejects_non_csv(body: bytes, message: str) -> None:
    with pytest.raises(IngestError) as info:
        validate_csv(body)
    assert message in str(info.value)


def test_unterminated_quote_does_not_parse(sample_bytes: bytes) -> None:
    broken = sample_bytes + b'bitcoin,BTC,"Bitcoin,28/4/2013,1,1,2,0.5,1.5,0,0,0.5,1.5\n'
    with pytest.raises(IngestError, match="does not parse as CSV: line 42"):
        validate_csv(broken)


def test_header_only_is_rejected(sample_bytes: bytes) -> None:
    with pytest.raises(IngestError, match="header but no data rows"):
        validate_csv(sample_bytes.split(b"\n")[0] + b"\n")


def test_missing_columns_are_named(sample_bytes: bytes) -> None:
    lines = sample_bytes.decode().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name not in ("close", "date")]
    body = "\n".join(",".join(line.split(",")[i] for i in keep) for line in lines)
    with pytest.raises(IngestError) as info:
        validate_csv(body.encode())
    assert "missing columns: close, date" in str(info.value)


def test_column_mapping_makes_other_names_fit(bitcoin_csv: Path) -> None:
    data = mapped_csv(bitcoin_csv)
    # Names match case-insensitively, so only "slug" (here "Name") is missing.
    with pytest.raises(IngestError, match="missing columns: slug;"):
        validate_csv(data)
    assert validate_csv(data, MAPPING) == 30
    assert validate_csv(data, '{"date": "Date", "slug": "Name"}') == 30  # JSON form


def test_mapping_to_an_absent_column_says_so(bitcoin_csv: Path) -> None:
    with pytest.raises(IngestError, match=r"missing columns: date \(mapped from 'When'\)"):
        validate_csv(mapped_csv(bitcoin_csv), {"date": "When", "slug": "Name"})


def test_malformed_mapping_json_is_an_ingest_error(bitcoin_csv: Path) -> None:
    with pytest.raises(IngestError, match="column mapping is not valid JSON"):
        validate_csv(mapped_csv(bitcoin_csv), "{date: Date}")


def test_expected_checksum_defaults_only_for_the_pinned_url() -> None:
    assert expected_checksum(DEFAULT_SOURCE, None) == DEFAULT_SHA256
    assert expected_checksum(DEFAULT_SOURCE, "") == DEFAULT_SHA256
    assert expected_checksum("https://example.org/other.csv", None) is None
    assert expected_checksum("x.csv", " " + DEFAULT_SHA256.upper()) == DEFAULT_SHA256
    with pytest.raises(ParameterError, match="64 hex digits"):
        expected_checksum("x.csv", "abc123")


def test_html_inside_a_field_is_not_an_html_page(sample_bytes: bytes) -> None:
    header = sample_bytes.split(b"\n")[0]
    row = b'bitcoin,BTC,"<html>Bitcoin</html>",28/4/2013,1,1,2,0.5,1.5,0,0,0.5,1.5'
    assert validate_csv(header + b"\n" + row + b"\n") == 1
