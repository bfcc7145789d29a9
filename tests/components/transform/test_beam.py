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


def test_read_line_chunks_numbers_whole_lines(tmp_path) -> None:
    data = "h\n" + "".join(f"row{i}\n" for i in range(2, 40)) + "last-no-newline"
    path = tmp_path / "in.csv"
    path.write_text(data)
    chunks = list(beam_ops.ReadLineChunks(chunk_bytes=16).process(str(path)))
    assert len(chunks) > 5
    numbered = [
        (first + k, text)
        for first, blob in chunks
        for k, text in enumerate(beam_ops.chunk_lines(blob))
    ]
    assert numbered == [(i, f"row{i}") for i in range(2, 40)] + [(40, "last-no-newline")]


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
            | beam.ParDo(beam_ops.ParseChunks(RowParser.from_header(HEADER))).with_outputs(
                "rejected", "counts", main="accepted"
            )
        )
        assert_that(
            out.accepted
            | "A" >> beam.Map(lambda kv: (kv[0], kv[1].line.tolist(), kv[1].close.tolist())),
            equal_to([("bitcoin", [2, 7], [100.0, 101.0]), ("ethereum", [5], [5.0])]),
            label="accepted",
        )
        assert_that(
            out.rejected | "R" >> beam.Map(lambda r: (r.line, r.code)),
            equal_to([(4, "high_below_low"), (6, "missing_field")]),
            label="rejected",
        )
        assert_that(
            out.counts
            | "C"
            >> beam.Map(
                lambda c: (
                    c["input_rows"],
                    c["accepted_rows"],
                    c["rejected_rows"],
                    c["blank_lines"],
                    dict(c["coins_in_input"]),
                )
            ),
            equal_to([(5, 3, 2, 1, {"bitcoin": 2, "ethereum": 1})]),
            label="counts",
        )


def test_coin_examples_are_split_in_time_order_per_coin() -> None:
    parser = RowParser.from_header(HEADER)
    raw = series("aaa", walk(60)) + series("bbb", walk(45), start=MONDAY + dt.timedelta(days=5))
    raw.append(line("aaa", MONDAY + dt.timedelta(days=40), 1.0))  # a duplicate date, later line
    chunk = parser.parse_chunk(2, raw)
    # Each coin's rows arrive as several blocks (as from several chunks of the file).
    blocks = [
        (coin, block.take(part))
        for coin, block in chunk.blocks.items()
        for part in np.array_split(np.arange(len(block))[::-1], 3)
    ]

    def date_order_holds(elements):
        by_coin: dict[str, dict[str, list]] = {}
        for split, shard, rows in elements:
            assert shard == 0
            by_coin.setdefault(rows.coin, {s: [] for s in SPLITS})[split].extend(rows.days.tolist())
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
            | beam.ParDo(beam_ops.BuildCoinExamples((0.7, 0.15, 0.15), 1)).with_outputs(
                "info", main="examples"
            )
        )
        assert_that(out.examples, date_order_holds, label="order")
        assert_that(
            out.info
            | beam.Map(
                lambda i: (
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


def test_sum_counts_adds_the_chunk_tallies() -> None:
    parser = RowParser.from_header(HEADER)
    first = parser.parse_chunk(2, [line("aaa", MONDAY, 1.0), "x,y"]).counts()
    second = parser.parse_chunk(4, ["", line("aaa", MONDAY, 1.0), line("bbb", MONDAY, 2.0)])
    with _pipeline() as p:
        total = (
            p | beam.Create([first, second.counts()]) | beam.CombineGlobally(beam_ops.SumCountsFn())
        )
        assert_that(
            total
            | beam.Map(
                lambda c: (
                    c["input_rows"],
                    c["accepted_rows"],
                    c["rejected_rows"],
                    c["blank_lines"],
                    dict(c["rejected_reasons"]),
                    dict(c["coins_in_input"]),
                )
            ),
            equal_to([(4, 3, 1, 1, {"missing_field": 1}, {"aaa": 2, "bbb": 1})]),
        )


def test_write_sorted_csv_writes_every_shard_even_empty(tmp_path) -> None:
    names = shard_names("train", 3)
    items = [
        (2, ("b", beam_ops.CsvRows.of(["b", "2"]))),
        (2, ("a", beam_ops.CsvRows("a,3\na,4\n", 2))),
        (0, ("c", beam_ops.CsvRows.of(["c", "1,5"]))),
    ]
    with _pipeline() as p:
        written = (
            p
            | beam.Create(items)
            | beam_ops.WriteSortedCsv([str(tmp_path / n) for n in names], ["k", "v"])
        )
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
