"""ingest() into a local-directory lake, from local files and from URLs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from components.common.results import ParameterError
from components.common.uris import FetchError
from components.ingest.ingest import (
    IngestError,
    _create_exclusive,
    raw_object_name,
)
from components.ingest.ingest import (
    run as ingest,
)
from tests.conftest import FULL_CSV_SHA256

from .conftest import MAPPING, WebServer, mapped_csv


def lake_files(lake: Path) -> dict[str, tuple[int, int]]:
    """Every file under the lake with its (size, mtime_ns): any change shows."""
    return {
        str(p.relative_to(lake)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(lake.rglob("*"))
        if p.is_file()
    }


def test_stores_the_full_file_content_addressed(crypto_csv: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = ingest(str(crypto_csv), str(lake), expected_sha256=FULL_CSV_SHA256)

    stored = lake / "raw" / f"sha256={FULL_CSV_SHA256}" / "crypto-markets.csv"
    assert result.lake_uri == str(stored)
    assert stored.read_bytes() == crypto_csv.read_bytes()
    assert (result.sha256, result.bytes, result.rows) == (FULL_CSV_SHA256, 2_645_563, 29_999)
    assert result.stored_new is True
    assert result.source == str(crypto_csv.resolve())
    assert result.fetched_at.endswith("Z")

    metadata = json.loads((stored.parent / "crypto-markets.csv.metadata.json").read_text())
    assert metadata == {
        "source": str(crypto_csv.resolve()),
        "sha256": FULL_CSV_SHA256,
        "bytes": 2_645_563,
        "rows": 29_999,
        "fetched_at": result.fetched_at,
    }
    assert sorted(lake_files(lake)) == [
        raw_object_name(FULL_CSV_SHA256, "crypto-markets.csv"),
        raw_object_name(FULL_CSV_SHA256, "crypto-markets.csv.metadata.json"),
    ]  # no temporary files left behind


def test_rerun_with_same_bytes_stores_nothing_new(sample_csv: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    first = ingest(str(sample_csv), str(lake))
    before = lake_files(lake)
    second = ingest(str(sample_csv), str(lake))
    assert (first.stored_new, second.stored_new) == (True, False)
    assert second.lake_uri == first.lake_uri
    assert lake_files(lake) == before  # nothing written, nothing touched

    # Same bytes under another file name: still the same content, still nothing new.
    renamed = tmp_path / "renamed.csv"
    renamed.write_bytes(sample_csv.read_bytes())
    third = ingest(str(renamed), str(lake))
    assert third.stored_new is False and third.lake_uri == first.lake_uri
    assert lake_files(lake) == before


def test_never_overwrites_a_different_file(sample_csv: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    sha = hashlib.sha256(sample_csv.read_bytes()).hexdigest()
    squatter = lake / raw_object_name(sha, "sample.csv")
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"something else\n")

    with pytest.raises(IngestError, match="refusing to overwrite .*sample.csv: it exists"):
        ingest(str(sample_csv), str(lake))
    assert squatter.read_bytes() == b"something else\n"
    assert not squatter.with_name("sample.csv.metadata.json").exists()


def test_exclusive_create_never_replaces(tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    assert _create_exclusive(target, b"first") is True
    assert _create_exclusive(target, b"second") is False  # e.g. a concurrent writer
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["x.csv"]


def test_rerun_restores_a_missing_sidecar(sample_csv: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    stored = Path(ingest(str(sample_csv), str(lake)).lake_uri)
    sidecar = stored.with_name(stored.name + ".metadata.json")
    sidecar.unlink()  # as after a crash between the data and its metadata
    assert ingest(str(sample_csv), str(lake)).stored_new is False
    assert json.loads(sidecar.read_text())["rows"] == 40


def test_checksum_mismatch_stores_nothing(sample_csv: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    actual = hashlib.sha256(sample_csv.read_bytes()).hexdigest()
    with pytest.raises(IngestError) as info:
        ingest(str(sample_csv), str(lake), expected_sha256=FULL_CSV_SHA256)
    assert f"checksum mismatch: expected {FULL_CSV_SHA256}, got {actual}" in str(info.value)
    assert lake_files(lake) == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty file (0 bytes)"),
        (b"<!doctype html><html><body>404</body></html>", "got HTML, not CSV"),
        (
            b"slug,symbol,name,date,open,high,low,volume\nbitcoin,BTC,Bitcoin,28/4/2013,1,2,0.5,0\n",
            "missing columns: close;",
        ),
    ],
    ids=["empty", "html", "missing-close"],
)
def test_bad_input_stores_nothing(body: bytes, message: str, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(body)
    lake = tmp_path / "lake"
    with pytest.raises(IngestError) as info:
        ingest(str(source), str(lake))
    assert message in str(info.value)
    assert str(source) in str(info.value)  # the message says which input
    assert lake_files(lake) == {}


def test_column_mapping_is_applied(bitcoin_csv: Path, tmp_path: Path) -> None:
    source = tmp_path / "my prices.csv"
    source.write_bytes(mapped_csv(bitcoin_csv))
    with pytest.raises(IngestError, match="missing columns: slug"):
        ingest(str(source), str(tmp_path / "lake"))
    result = ingest(str(source), str(tmp_path / "lake"), column_mapping=json.dumps(MAPPING))
    assert result.rows == 30 and result.stored_new
    assert Path(result.lake_uri).name == "my_prices.csv"  # a safe object name
    assert Path(result.lake_uri).read_bytes() == source.read_bytes()  # stored as it came


def test_raw_path_gets_a_byte_copy(sample_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "artifact" / "raw"
    ingest(str(sample_csv), str(tmp_path / "lake"), raw_path=str(out))
    assert out.read_bytes() == sample_csv.read_bytes()
    # also when the lake already held the bytes
    out.unlink()
    ingest(str(sample_csv), str(tmp_path / "lake"), raw_path=str(out))
    assert out.read_bytes() == sample_csv.read_bytes()


def test_url_source(web: WebServer, crypto_csv: Path, tmp_path: Path) -> None:
    url = web.url("/ndd3/crypto-markets.csv")
    result = ingest(url, str(tmp_path / "lake"), expected_sha256=FULL_CSV_SHA256)
    assert result.source == url
    assert Path(result.lake_uri).name == "crypto-markets.csv"
    assert Path(result.lake_uri).read_bytes() == crypto_csv.read_bytes()
    assert result.rows == 29_999


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/login", "got HTML, not CSV"),
        ("/empty.csv", "empty file (0 bytes)"),
        ("/gone.csv", "HTTP 404 Not Found"),
    ],
)
def test_bad_url_stores_nothing(web: WebServer, tmp_path: Path, path: str, message: str) -> None:
    lake = tmp_path / "lake"
    with pytest.raises((IngestError, FetchError)) as info:
        ingest(web.url(path), str(lake))
    assert message in str(info.value)
    assert lake_files(lake) == {}


def test_a_url_is_not_a_lake(sample_csv: Path) -> None:
    with pytest.raises(ParameterError, match="not a URL"):
        ingest(str(sample_csv), "https://example.org/lake")
