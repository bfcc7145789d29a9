"""Ingest streams: bounded reads, an overall deadline and a minimum rate, staged files that
never outlive a failure, and messages that name a wrong delimiter or encoding."""

from __future__ import annotations

import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from components.common import uris
from components.common.uris import FetchError
from components.ingest import IngestError, run
from components.ingest.ingest import STAGING_PREFIX, sweep_staging, validate_csv


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Announces a large body, then sends a byte every 0.2 s."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"s")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/slow.csv"
    httpd.shutdown()


def _staged(lake: Path) -> list[Path]:
    return list((lake / "raw").glob(f"{STAGING_PREFIX}*")) if (lake / "raw").exists() else []


def test_a_trickling_server_hits_the_deadline_and_leaves_nothing(trickle, tmp_path):
    lake = tmp_path / "lake"
    started = time.monotonic()
    with pytest.raises(FetchError, match="exceeded its deadline of 1.5 s"):
        run(trickle, str(lake), deadline_s=1.5, min_bytes_per_s=0)
    assert time.monotonic() - started < 10  # the blocked read was ended, not waited out
    assert not lake.exists()


def test_a_too_slow_transfer_is_given_up_after_the_grace_period(trickle, tmp_path, monkeypatch):
    monkeypatch.setattr(uris, "RATE_GRACE_S", 1.0)
    lake = tmp_path / "lake"
    (lake / "raw").mkdir(parents=True)
    with pytest.raises(FetchError, match="is too slow: .* below the minimum of 1000 bytes/s"):
        run(trickle, str(lake), min_bytes_per_s=1000)
    assert _staged(lake) == []  # the staged file was removed on failure


def test_a_failed_validation_removes_its_staged_file(tmp_path):
    lake = tmp_path / "lake"
    (lake / "raw").mkdir(parents=True)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"slug,date,open,high,low,close,volume\n" + b"x,1,1,1,1,1,1\n" * 50_000 + b"\0")
    with pytest.raises(IngestError, match="NUL byte at offset"):
        run(str(bad), str(lake))
    assert _staged(lake) == []


def test_a_staged_file_left_by_a_killed_run_is_swept_by_the_next(tmp_path, sample_csv):
    lake = tmp_path / "lake"
    (lake / "raw").mkdir(parents=True)
    dead = lake / "raw" / f"{STAGING_PREFIX}dead.tmp"
    dead.write_bytes(b"half a download")
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    busy = lake / "raw" / f"{STAGING_PREFIX}busy.tmp"  # another run writing right now
    busy.write_bytes(b"in progress")
    run(str(sample_csv), str(lake))
    assert not dead.exists() and busy.exists()
    assert sweep_staging(lake / "raw", older_than_s=0) == 1


def test_deadline_and_rate_are_parameters(tmp_path, sample_csv):
    from components.common.results import ParameterError

    with pytest.raises(ParameterError, match="deadline_s must be > 0.*min_bytes_per_s"):
        run(str(sample_csv), str(tmp_path / "lake"), deadline_s=0, min_bytes_per_s=-1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"slug;date;open;high;low;close;volume\nx;2020-01-01;1;1;1;1;1\n",
            "the file is semicolon (';')-separated, not comma-separated",
        ),
        (
            b"slug\tdate\topen\thigh\tlow\tclose\tvolume\nx\t1\t1\t1\t1\t1\t1\n",
            "the file is tab-separated",
        ),
        (
            "slug,date,open,high,low,close,volume\nx,1,1,1,1,1,1\n".encode("utf-16"),
            "the file is UTF-16 (little-endian) text, not UTF-8",
        ),
        (
            "slug,date,open,high,low,close,volume\n".encode("utf-16-be"),
            "the file is UTF-16 (big-endian) text, not UTF-8",
        ),
        (
            "slug,date,open,high,low,close,volume\n".encode("utf-32"),
            "the file is UTF-32 (little-endian) text, not UTF-8",
        ),
        (
            "slug,date,open,high,low,close,volume\n".encode("utf-32-be"),
            "the file is UTF-32 (big-endian) text, not UTF-8",
        ),
    ],
    ids=["semicolon", "tab", "utf-16", "utf-16-be-no-bom", "utf-32", "utf-32-be-no-bom"],
)
def test_wrong_delimiter_or_encoding_is_named(body, message):
    with pytest.raises(IngestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_csv(body)


def test_records_across_chunk_boundaries_count_once(sample_bytes):
    from components.ingest.ingest import validate_stream

    whole = validate_csv(sample_bytes)
    pieces = [sample_bytes[i : i + 7] for i in range(0, len(sample_bytes), 7)]
    assert validate_stream(pieces) == whole
    utf8 = "slug,date,open,high,low,close,volume\nbitcöin,1,1,1,1,1,1\n".encode()
    assert validate_stream([utf8[i : i + 1] for i in range(len(utf8))]) == 1  # split é
