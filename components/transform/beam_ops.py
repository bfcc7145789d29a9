"""Beam building blocks of the transform; the logic they call lives in the pure modules."""

import csv
import io
import json
import logging
import zlib
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from components.transform.parse import Rejection, RowParser
from components.transform.series import example_to_csv_row, process_coin
from components.transform.stats import Moments, build_stats

log = logging.getLogger(__name__)


class ReadNumberedLines(beam.DoFn):
    """A file path → ``(line_number, text)`` for every line after the header (1-based).

    The file is read sequentially so each line keeps its number for the rejected output;
    downstream steps are parallel. Lines split on ``\\n`` only, the trailing ``\\r`` is kept
    for the parser to strip; bytes that are not UTF-8 become U+FFFD.
    """

    def process(self, path: str):
        with FileSystems.open(path) as handle:
            handle.readline()  # header, resolved before the pipeline was built
            for number, raw in enumerate(iter(handle.readline, b""), start=2):
                yield number, raw.decode("utf-8", errors="replace")


class ParseLines(beam.DoFn):
    """``(line, text)`` → ParsedRow (main), Rejection (``rejected``), line number (``blank``)."""

    REJECTED = "rejected"
    BLANK = "blank"

    def __init__(self, parser: RowParser):
        self.parser = parser

    def process(self, element: tuple[int, str]):
        line, text = element
        result = self.parser.parse(line, text)
        if result is None:
            yield TaggedOutput(self.BLANK, line)
        elif isinstance(result, Rejection):
            yield TaggedOutput(self.REJECTED, result)
        else:
            yield result


class BuildCoinExamples(beam.DoFn):
    """``(coin, rows)`` → ``(split, coin, example)`` (main) and the coin's summary (``info``)."""

    INFO = "info"

    def __init__(self, fractions: Sequence[float]):
        self.fractions = tuple(fractions)

    def process(self, element):
        coin, rows = element
        result = process_coin(coin, rows, self.fractions)
        counts = result.counts()
        log.info(
            "%s: %d days, %d duplicates dropped, %d gaps → train %d / eval %d / test %d",
            coin,
            result.bars,
            result.duplicates,
            result.gaps,
            counts["train"],
            counts["eval"],
            counts["test"],
        )
        for split, example in result.examples:
            yield split, coin, example
        yield TaggedOutput(self.INFO, result.info())


class MomentsFn(beam.CombineFn):
    """Mean and population std of the feature and target columns."""

    def create_accumulator(self):
        return Moments()

    def add_input(self, acc, example):
        return acc.add(example)

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for acc in accumulators:
            merged.merge(acc)
        return merged

    def extract_output(self, acc):
        return acc


def shard_of(coin: str, num_shards: int) -> int:
    """Stable shard of a coin: every coin lives in one shard of each split."""
    return zlib.crc32(coin.encode()) % num_shards


class WriteSortedCsv(beam.PTransform):
    """``(shard, (sort_key, fields))`` → the CSV file ``paths[shard]``, with a header, rows sorted.

    Every file is written, empty ones with just the header, so a reader always finds all
    shards. Output is deterministic, so a retried bundle rewrites identical bytes.
    """

    def __init__(self, paths: Sequence[str], header: Sequence[str]):
        super().__init__()
        self.paths = list(paths)
        self.header = list(header)

    def expand(self, pcoll):
        every_shard = pcoll.pipeline | "EveryShard" >> beam.Create(
            [(i, None) for i in range(len(self.paths))]
        )
        return (
            (pcoll, every_shard)
            | "Flatten" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteShard(self.paths, self.header))
        )


class _WriteShard(beam.DoFn):
    def __init__(self, paths: Sequence[str], header: Sequence[str]):
        self.paths = paths
        self.header = header

    def process(self, element):
        shard, items = element
        rows = sorted((item for item in items if item is not None), key=lambda item: item[0])
        path = self.paths[shard]
        with FileSystems.create(path, mime_type="text/csv") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(self.header)
            writer.writerows(fields for _, fields in rows)
            text.flush()
            text.detach()
        yield path, len(rows)


class WriteStats(beam.DoFn):
    """Writes ``stats.json`` (``build_stats``) from constants and side inputs."""

    def __init__(self, path: str, **constants):
        self.path = path
        self.constants = constants

    def process(self, _, **side_inputs):
        stats = build_stats(**self.constants, **side_inputs)
        with FileSystems.create(self.path, mime_type="application/json") as handle:
            handle.write(json.dumps(stats, indent=2).encode())
        yield self.path


def example_item(element: tuple[str, str, dict], num_shards: int):
    """``(split, coin, example)`` → ``(shard, ((coin, date), csv_fields))``."""
    _, coin, example = element
    return shard_of(coin, num_shards), ((coin, example["date"]), example_to_csv_row(coin, example))


def rejected_item(rejection: Rejection):
    """Rejection → ``(0, (line, [line, reason, raw]))``: one rejected file, by line."""
    return 0, (rejection.line, [str(rejection.line), rejection.reason, rejection.raw])
