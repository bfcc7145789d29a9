"""The Beam building blocks under TestPipeline + assert_that (in-process FnApiRunner)."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from components.common.contracts import SPLITS, shard_names
from components.transform import beam_ops
from components.transform.parse import RowParser
from components.transform.stats import Moments, merge_moments
from tests.components.transform.synthetic import HEADER, MONDAY, line, series, walk


def _pipeline() -> test_pipeline.TestPipeline:
    # Never the default DirectRunner: it would first try to download the Prism binary.
    return test_pipeline.TestPipeline(runner=FnApiRunner())


@pytest.mark.parametrize("range_bytes", [1, 7, 16, 23, 50, 10_000])
@pytest.mark.parametrize("chunk_bytes", [1, 16, 1 << 20])
def test_byte_ranges_read_every_line_once_with_its_number(
    tmp_path, range_bytes: int, chunk_bytes: int
) -> None:
    lines = ["header,h", *(f"row{i}" + "x" * (i % 7) for i in range(2, 40))]
    lines[10] = lines[10] + "\r"  # CRLF is the parser's business
    lines[11] = ""  # a blank line is a line
    path = tmp_path / "in.csv"
    path.write_bytes(("\n".join(lines) + "\nlast-no-newline").encode())
    ranges = beam_ops.byte_ranges(str(path), range_bytes)
    assert ranges[0][1] == 0 and ranges[-1][2] == path.stat().st_size
    newlines = [beam_ops.count_newlines(r, str(path)) for r in ranges]
    read = beam_ops.ReadLineChunks(str(path), chunk_bytes)
    chunks = [c for r in ranges for c in read.process(r, newlines)]
    numbered = [
        (first + k, text)
        for first, blob in chunks
        for k, text in enumerate(beam_ops.chunk_lines(blob))
    ]
    expected = [(i + 1, text) for i, text in enumerate(lines)][1:]
    assert numbered == [*expected, (len(lines) + 1, "last-no-newline")]


def test_a_header_only_file_still_yields_one_chunk(tmp_path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "\n")
    ranges = beam_ops.byte_ranges(str(path))
    read = beam_ops.ReadLineChunks(str(path))
    assert [c for r in ranges for c in read.process(r, [(0, 1)])] == [(2, b"")]


def test_parse_chunks_routes_accepted_rejected_and_counts() -> None:
    lines = [
        line("bitcoin", MONDAY, 100.0),
        "",
        line("bitcoin", MONDAY, 100.0, high=90.0, low=95.0),
        line("Ethereum", MONDAY, 5.0, day_first=True) + "\r",
        "bitcoin,BTC,Bitcoin,2021-01-05",
        line("bitcoin", MONDAY + dt.timedelta(days=1), 101.0),
    ]
    data = ("\n".join(lines) + "\n").encode()
    with _pipeline() as p:
        out = (
            p
            | beam.Create([(2, data)])
            | beam.ParDo(
                beam_ops.ParseChunks(RowParser.from_header(HEADER), frozenset({"bitcoin"}))
            ).with_outputs("rejected", "summary", main="accepted")
        )
        assert_that(
            out.accepted
            | "A" >> beam.Map(lambda kv: (kv[0], kv[1].line.tolist(), kv[1].close.tolist())),
            # Only the wanted coins go on; the counts are of every line.
            equal_to([("bitcoin", [2, 7], [100.0, 101.0])]),
            label="accepted",
        )
        assert_that(
            out.rejected | "R" >> beam.Map(lambda r: (r.line, r.code)),
            equal_to([(4, "high_below_low"), (6, "missing_field")]),
            label="rejected",
        )
        assert_that(
            out.summary
            | "C"
            >> beam.MapTuple(
                lambda kind, c: (
                    kind,
                    c["input_rows"],
                    c["accepted_rows"],
                    c["rejected_rows"],
                    c["blank_lines"],
                    dict(c["coins_in_input"]),
                )
            ),
            equal_to([("counts", 5, 3, 2, 1, {"bitcoin": 2, "ethereum": 1})]),
            label="counts",
        )


def test_coin_examples_are_split_in_time_order_per_coin(tmp_path) -> None:
    parts = tmp_path / "parts"
    parser = RowParser.from_header(HEADER)
    raw = series("aaa", walk(60)) + series("bbb", walk(45), start=MONDAY + dt.timedelta(days=5))
    # A duplicate date, later line: an exact copy (dropped; with other values both lines
    # would be rejected as conflicting_duplicate).
    raw.append(raw[40])
    assert (MONDAY + dt.timedelta(days=40)).isoformat() in raw[40]
    chunk = parser.parse_chunk(2, raw)
    # Each coin's rows arrive as several blocks (as from several chunks of the file).
    blocks = [
        (coin, block.take(part))
        for coin, block in chunk.blocks.items()
        for part in np.array_split(np.arange(len(block))[::-1], 3)
    ]

    def date_order_holds(elements):
        by_coin: dict[str, dict[str, list]] = {}
        for (split, shard), (coin, part) in elements:
            assert shard == 0
            with open(part.path, "rb") as handle:
                handle.seek(part.offset)
                text = handle.read(part.size).decode()
            assert text.count("\n") == part.rows
            days = [dt.date.fromisoformat(row.split(",")[1]).toordinal() for row in text.split()]
            by_coin.setdefault(coin, {s: [] for s in SPLITS})[split].extend(days)
        for coin, dates in by_coin.items():
            ordered = [d for s in SPLITS for d in dates[s]]
            assert ordered == sorted(ordered), f"{coin}: a later date is in an earlier split"
            for earlier, later in zip(SPLITS, SPLITS[1:], strict=False):
                # Purged boundary: the target day (date + 1) of an earlier split's last row
                # comes before the later split starts.
                assert max(dates[earlier]) + 1 < min(dates[later]), coin
        # aaa: 29 examples sized 20 / 4 / 5; bbb: 14 sized 9 / 2 / 3; each loses its last
        # train and last eval row to the purge.
        assert {c: sum(map(len, d.values())) for c, d in by_coin.items()} == {"aaa": 27, "bbb": 12}

    with _pipeline() as p:
        out = (
            p
            | beam.Create(blocks)
            | beam.GroupByKey()
            | beam.ParDo(
                beam_ops.BuildCoinExamples((0.7, 0.15, 0.15), 1, str(parts), part_bytes=100)
            ).with_outputs("info", main="examples")
        )
        assert_that(out.examples, date_order_holds, label="order")
        assert_that(
            out.info
            | beam.MapTuple(
                lambda kind, i: (
                    i["coin"],
                    i["bars"],
                    i["duplicates"],
                    i["counts"]["train"],
                    i["train_moments"].n,
                )
            ),
            equal_to([("aaa", 60, 1, 19, 19), ("bbb", 45, 0, 8, 8)]),
            label="info",
        )


def test_train_moments_merged_per_coin_equal_numpy() -> None:
    rng = np.random.default_rng(3)
    names = Moments().names
    matrix = rng.normal(size=(300, len(names)))
    parts = [Moments.of(matrix[lo:hi]) for lo, hi in ((0, 10), (10, 10), (10, 180), (180, 300))]
    moments = merge_moments(parts)
    assert moments.n == 300
    np.testing.assert_allclose([moments.mean[n] for n in names], matrix.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose([moments.std()[n] for n in names], matrix.std(axis=0), rtol=1e-12)


def test_summary_adds_the_chunk_tallies_and_lists_the_coins() -> None:
    parser = RowParser.from_header(HEADER)
    first = parser.parse_chunk(2, [line("aaa", MONDAY, 1.0), "x,y"]).counts()
    second = parser.parse_chunk(4, ["", line("aaa", MONDAY, 1.0), line("bbb", MONDAY, 2.0)])
    with _pipeline() as p:
        total = (
            p
            | beam.Create(
                [("counts", first), ("coin", {"coin": "aaa"}), ("counts", second.counts())]
            )
            | beam.CombineGlobally(beam_ops.SummaryFn())
        )
        assert_that(
            total
            | beam.Map(lambda summary: (summary["counts"], summary["coins"]))
            | beam.MapTuple(
                lambda c, coins: (
                    coins,
                    c["input_rows"],
                    c["accepted_rows"],
                    c["rejected_rows"],
                    c["blank_lines"],
                    dict(c["rejected_reasons"]),
                    dict(c["coins_in_input"]),
                )
            ),
            equal_to([([{"coin": "aaa"}], 4, 3, 1, 1, {"missing_field": 1}, {"aaa": 2, "bbb": 1})]),
        )


def test_write_sorted_csv_writes_every_shard_even_empty(tmp_path) -> None:
    names = shard_names("train", 3)
    part = tmp_path / "part.csv"
    part.write_text("x,1\na,3\na,4\ny,2\n")
    items = [
        (2, ("b", beam_ops.CsvRows.of(["b", "2"]))),
        (2, ("a", beam_ops.PartFile(str(part), 4, 8, 2))),
        (0, ("c", beam_ops.CsvRows.of(["c", "1,5"]))),
    ]
    files = {i: (str(tmp_path / n), ["k", "v"]) for i, n in enumerate(names)}
    with _pipeline() as p:
        written = p | beam.Create(items) | beam_ops.WriteSortedCsv(files)
        assert_that(
            written | beam.Map(lambda pw: (pw[0].rsplit("/", 1)[-1], pw[1])),
            equal_to([(names[0], 1), (names[1], 0), (names[2], 3)]),
        )
    assert (tmp_path / names[0]).read_text() == 'k,v\nc,"1,5"\n'
    assert (tmp_path / names[1]).read_text() == "k,v\n"
    assert (tmp_path / names[2]).read_text() == "k,v\na,3\na,4\nb,2\n"


@pytest.mark.parametrize("num_shards", [1, 4])
def test_shard_of_is_stable(num_shards: int) -> None:
    assert {beam_ops.shard_of("bitcoin", num_shards) for _ in range(3)} == {
        beam_ops.shard_of("bitcoin", num_shards)
    }
    assert 0 <= beam_ops.shard_of("bitcoin", num_shards) < num_shards
