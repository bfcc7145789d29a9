"""Beam building blocks of the transform; the logic they call lives in the pure modules.

Elements are coarse on purpose: the file travels as chunks of lines, a coin's accepted rows
as column blocks, its examples as one ``CoinRows`` per split. Per-row work happens inside
the numpy code they call, not as one Beam element per row.
"""

import csv
import io
import json
import logging
import zlib
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from components.common.contracts import SPLITS
from components.transform.parse import BarBlock, RowParser, empty_counts, merge_counts
from components.transform.series import process_coin
from components.transform.stats import build_stats, merge_moments

log = logging.getLogger(__name__)

#: Bytes of the input read per chunk (whole lines: a chunk ends at a newline).
CHUNK_BYTES = 1 << 20


class ReadLineChunks(beam.DoFn):
    """A file path → ``(first_line_number, bytes)`` chunks of whole lines after the header.

    The file is read sequentially so each line keeps its number (1-based, the header is
    line 1) for the rejected output; the parsing downstream is parallel. Lines split on
    ``\\n`` only; a ``\\r`` before it is the parser's to strip.
    """

    def __init__(self, chunk_bytes: int = CHUNK_BYTES):
        self.chunk_bytes = chunk_bytes

    def process(self, path: str):
        number = 2
        with FileSystems.open(path) as handle:
            handle.readline()  # header, resolved before the pipeline was built
            rest = b""
            while block := handle.read(self.chunk_bytes):
                block = rest + block
                end = block.rfind(b"\n") + 1
                if end == 0:
                    rest = block
                    continue
                rest = block[end:]
                yield number, block[:end]
                number += block.count(b"\n", 0, end)
            if rest:
                yield number, rest


def chunk_lines(data: bytes) -> list[str]:
    """The lines of a chunk, without their ``\\n``; bytes that are not UTF-8 become U+FFFD."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


class ParseChunks(beam.DoFn):
    """``(first_line, bytes)`` → ``(coin, BarBlock)`` (main), Rejection (``rejected``) and the
    chunk's tallies (``counts``: see ``ChunkResult.counts``)."""

    REJECTED = "rejected"
    COUNTS = "counts"

    def __init__(self, parser: RowParser):
        self.parser = parser

    def process(self, element: tuple[int, bytes]):
        first_line, data = element
        result = self.parser.parse_chunk(first_line, chunk_lines(data))
        yield from result.blocks.items()
        for rejection in result.rejections:
            yield TaggedOutput(self.REJECTED, rejection)
        yield TaggedOutput(self.COUNTS, result.counts())


class SumCountsFn(beam.CombineFn):
    """Sums the chunk tallies of ``ParseChunks``."""

    def create_accumulator(self):
        return empty_counts()

    def add_input(self, acc, counts):
        return merge_counts(acc, counts)

    def merge_accumulators(self, accumulators):
        total = empty_counts()
        for acc in accumulators:
            merge_counts(total, acc)
        return total

    def extract_output(self, acc):
        return acc


class BuildCoinExamples(beam.DoFn):
    """``(coin, blocks)`` → ``(split, shard, CoinRows)`` per non-empty split (main) and the
    coin's summary with its train moments (``info``)."""

    INFO = "info"

    def __init__(self, fractions: Sequence[float], num_shards: int):
        self.fractions = tuple(fractions)
        self.num_shards = num_shards

    def process(self, element):
        coin, blocks = element
        result = process_coin(coin, BarBlock.concat(blocks), self.fractions)
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
        shard = shard_of(coin, self.num_shards)
        for split in SPLITS:
            if counts[split]:
                yield split, shard, result.rows(split)
        yield TaggedOutput(self.INFO, {**result.info(), "train_moments": result.moments()})


def shard_of(coin: str, num_shards: int) -> int:
    """Stable shard of a coin: every coin lives in one shard of each split."""
    return zlib.crc32(coin.encode()) % num_shards


class CsvRows:
    """Rows already formatted as CSV lines (each ending with a newline)."""

    def __init__(self, text: str, rows: int):
        self.text = text
        self.rows = rows

    def csv_text(self) -> str:
        return self.text

    @classmethod
    def of(cls, fields: Sequence[str]) -> "CsvRows":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(fields)
        return cls(out.getvalue(), 1)


class WriteSortedCsv(beam.PTransform):
    """``(shard, (sort_key, rows))`` → the CSV file ``paths[shard]``, with a header and the
    ``rows.csv_text()`` of every element in sort-key order (``rows.rows`` lines each).

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
        items = sorted((item for item in items if item is not None), key=lambda item: item[0])
        path = self.paths[shard]
        rows = 0
        with FileSystems.create(path, mime_type="text/csv") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            csv.writer(text, lineterminator="\n").writerow(self.header)
            for _, block in items:
                text.write(block.csv_text())
                rows += block.rows
            text.flush()
            text.detach()
        yield path, rows


class WriteStats(beam.DoFn):
    """Writes ``stats.json`` (``build_stats``) from constants and side inputs: the summed
    chunk tallies and the per-coin summaries (train moments merged in coin order)."""

    def __init__(self, path: str, **constants):
        self.path = path
        self.constants = constants

    def process(self, _, counts: dict, coin_infos: list[dict]):
        infos = sorted(coin_infos, key=lambda info: info["coin"])
        stats = build_stats(
            **self.constants,
            train_moments=merge_moments(info["train_moments"] for info in infos),
            coin_infos=infos,
            **counts,
        )
        with FileSystems.create(self.path, mime_type="application/json") as handle:
            handle.write(json.dumps(stats, indent=2).encode())
        yield self.path


def coin_rows_item(element):
    """``(split, shard, CoinRows)`` → ``(shard, (coin, CoinRows))``: a shard's rows by coin."""
    _, shard, rows = element
    return shard, (rows.coin, rows)


def rejected_item(rejection):
    """Rejection → ``(0, (line, CsvRows))``: one rejected file, by line."""
    fields = [str(rejection.line), rejection.reason, rejection.raw]
    return 0, (rejection.line, CsvRows.of(fields))
