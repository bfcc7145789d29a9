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
from components.transform.stats import Moments
from tests.components.transform.synthetic import HEADER, MONDAY, line, series, walk


def _pipeline() -> test_pipeline.TestPipeline:
    # Never the default DirectRunner: it would first try to download the Prism binary.
    return test_pipeline.TestPipeline(runner=FnApiRunner())


def test_parse_lines_routes_accepted_rejected_and_blank() -> None:
    lines = [
        (2, line("bitcoin", MONDAY, 100.0)),
        (3, ""),
        (4, line("bitcoin", MONDAY, 100.0, high=90.0, low=95.0)),
        (5, line("Ethereum", MONDAY, 5.0, day_first=True) + "\r\n"),
        (6, "bitcoin,BTC,Bitcoin,2021-01-05"),
    ]
    with _pipeline() as p:
        out = (
            p
            | beam.Create(lines)
            | beam.ParDo(beam_ops.ParseLines(RowParser.from_header(HEADER))).with_outputs(
                "rejected", "blank", main="accepted"
            )
        )
        assert_that(
            out.accepted | "A" >> beam.Map(lambda r: (r.line, r.coin, r.bar.date)),
            equal_to([(2, "bitcoin", MONDAY), (5, "ethereum", MONDAY)]),
            label="accepted",
        )
        assert_that(
            out.rejected | "R" >> beam.Map(lambda r: (r.line, r.code)),
            equal_to([(4, "high_below_low"), (6, "missing_field")]),
            label="rejected",
        )
        assert_that(out.blank, equal_to([3]), label="blank")


def test_coin_examples_are_split_in_time_order_per_coin() -> None:
    parser = RowParser.from_header(HEADER)
    raw = series("aaa", walk(60)) + series("bbb", walk(45), start=MONDAY + dt.timedelta(days=5))
    raw.append(line("aaa", MONDAY + dt.timedelta(days=40), 1.0))  # a duplicate date, later line
    rows = [parser.parse(i + 2, text) for i, text in enumerate(raw)]

    def date_order_holds(elements):
        by_coin: dict[str, dict[str, list]] = {}
        for split, coin, example in elements:
            by_coin.setdefault(coin, {s: [] for s in SPLITS})[split].append(example["date"])
        for coin, dates in by_coin.items():
            ordered = [d for s in SPLITS for d in sorted(dates[s])]
            assert ordered == sorted(ordered), f"{coin}: a later date is in an earlier split"
            for earlier, later in zip(SPLITS, SPLITS[1:], strict=False):
                # Purged boundary: the target day (date + 1) of an earlier split's last row
                # comes before the later split starts.
                assert max(dates[earlier]) + dt.timedelta(days=1) < min(dates[later]), coin
        # aaa: 29 examples sized 20 / 4 / 5; bbb: 14 sized 9 / 2 / 3; each loses its last
        # train and last eval row to the purge.
        assert {c: sum(map(len, d.values())) for c, d in by_coin.items()} == {"aaa": 27, "bbb": 12}

    with _pipeline() as p:
        out = (
            p
            | beam.Create(rows[::-1])
            | beam.Map(lambda r: (r.coin, r))
            | beam.GroupByKey()
            | beam.ParDo(beam_ops.BuildCoinExamples((0.7, 0.15, 0.15))).with_outputs(
                "info", main="examples"
            )
        )
        assert_that(out.examples, date_order_holds, label="order")
        assert_that(
            out.info
            | beam.Map(lambda i: (i["coin"], i["bars"], i["duplicates"], i["counts"]["train"])),
            equal_to([("aaa", 60, 1, 19), ("bbb", 45, 0, 8)]),
            label="info",
        )


def test_train_moments_combine_equals_numpy() -> None:
    rng = np.random.default_rng(3)
    names = Moments().names
    rows = [dict(zip(names, rng.normal(size=len(names)), strict=True)) for _ in range(300)]
    matrix = np.array([[r[n] for n in names] for r in rows])

    def check(outputs):
        (moments,) = outputs
        assert moments.n == 300
        np.testing.assert_allclose(
            [moments.mean[n] for n in names], matrix.mean(axis=0), rtol=1e-10
        )
        np.testing.assert_allclose(
            [moments.std()[n] for n in names], matrix.std(axis=0), rtol=1e-10
        )

    with _pipeline() as p:
        assert_that(p | beam.Create(rows) | beam.CombineGlobally(beam_ops.MomentsFn()), check)


def test_write_sorted_csv_writes_every_shard_even_empty(tmp_path) -> None:
    names = shard_names("train", 3)
    items = [
        (2, ((("b", "2021-01-02")), ["b", "2"])),
        (2, (("a", "2021-01-03"), ["a", "3"])),
        (0, (("c", "2021-01-01"), ["c", "1"])),
    ]
    with _pipeline() as p:
        written = (
            p
            | beam.Create(items)
            | beam_ops.WriteSortedCsv([str(tmp_path / n) for n in names], ["k", "v"])
        )
        assert_that(
            written | beam.Map(lambda pw: (pw[0].rsplit("/", 1)[-1], pw[1])),
            equal_to([(names[0], 1), (names[1], 0), (names[2], 2)]),
        )
    assert (tmp_path / names[1]).read_text() == "k,v\n"
    assert (tmp_path / names[2]).read_text() == "k,v\na,3\nb,2\n"


@pytest.mark.parametrize("num_shards", [1, 4])
def test_shard_of_is_stable(num_shards: int) -> None:
    assert {beam_ops.shard_of("bitcoin", num_shards) for _ in range(3)} == {
        beam_ops.shard_of("bitcoin", num_shards)
    }
    assert 0 <= beam_ops.shard_of("bitcoin", num_shards) < num_shards
