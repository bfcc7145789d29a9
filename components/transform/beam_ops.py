"""Beam building blocks of the transform; the logic they call lives in the pure modules.

Elements are coarse on purpose: the file is read as byte ranges and parsed as chunks of
lines, a coin's accepted rows travel as column blocks, its shard rows as one part file per
split. Per-row work happens inside the numpy code they call, not as one Beam element per
row.
"""

import csv
import io
import json
import logging
import uuid
import zlib
from collections.abc import Hashable, Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from components.common.contracts import SPLITS, STATS_FAILED_KEY
from components.transform.parse import BarBlock, RowParser, empty_counts, merge_counts
from components.transform.series import DEFAULT_MAX_DAILY_MOVE, process_coin
from components.transform.stats import build_stats, merge_moments

log = logging.getLogger(__name__)

#: Bytes of the input per range: ranges are read and parsed in parallel.
RANGE_BYTES = 16 << 20
#: Bytes handed to the parser at a time (whole lines: a chunk ends at a newline).
CHUNK_BYTES = 1 << 20
#: Bytes of shard rows per part file (see BuildCoinExamples).
PART_BYTES = 8 << 20


def byte_ranges(path: str, range_bytes: int | None = None) -> list[tuple[int, int, int | None]]:
    """``(index, start, end)`` byte ranges (``RANGE_BYTES`` by default) covering ``path``; a
    compressed file is one range to its end (``end`` None: it cannot be seeked into)."""
    range_bytes = range_bytes or RANGE_BYTES
    if CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED:
        return [(0, 0, None)]
    (match,) = FileSystems.match([path])
    size = match.metadata_list[0].size_in_bytes
    starts = range(0, max(size, 1), range_bytes)
    return [(i, start, min(start + range_bytes, size)) for i, start in enumerate(starts)]


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.AUTO)


def count_newlines(element: tuple[int, int, int | None], path: str) -> tuple[int, int]:
    """``(index, start, end)`` → ``(index, newlines in bytes [start, end))``."""
    index, start, end = element
    count = 0
    if end is not None:
        with _open(path) as handle:
            handle.seek(start)
            position = start
            while position < end and (block := handle.read(min(CHUNK_BYTES, end - position))):
                count += block.count(b"\n")
                position += len(block)
    return index, count


class ReadLineChunks(beam.DoFn):
    """A byte range of the file → ``(first_line_number, bytes)`` chunks of the whole lines
    that start in it (the header, line 1, excepted).

    Line numbers (1-based, for the rejected output) come from the newline counts of the
    ranges before (the side input ``newlines``: ``(index, count)`` pairs), so ranges are
    read in parallel. Lines split on ``\n`` only; a ``\r`` before it is the parser's to
    strip. The first range yields at least one (maybe empty) chunk, so the tallies of the
    run always exist.
    """

    def __init__(self, path: str, chunk_bytes: int | None = None):
        self.path = path
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES

    def process(self, element: tuple[int, int, int | None], newlines):
        index, start, end = element
        counts = dict(newlines)
        number = 1 + sum(counts[i] for i in range(index))
        yielded = False
        with _open(self.path) as handle:
            if start == 0:
                skipped = handle.readline()  # the header, resolved before the pipeline was built
            else:
                handle.seek(start - 1)
                # A line begun in the previous range belongs to it.
                skipped = b"" if handle.read(1) == b"\n" else handle.readline()
            number += skipped.count(b"\n")
            position = start + len(skipped)
            while end is None or position < end:
                size = self.chunk_bytes if end is None else min(self.chunk_bytes, end - position)
                block = handle.read(size)
                if not block:
                    break
                if not block.endswith(b"\n"):
                    block += handle.readline()  # the line that starts in this range
                position += len(block)
                yield number, block
                yielded = True
                number += block.count(b"\n")
        if index == 0 and not yielded:
            yield number, b""


def chunk_lines(data: bytes) -> list[str]:
    """The lines of a chunk, without their ``\\n``; bytes that are not UTF-8 become U+FFFD."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


class ParseChunks(beam.DoFn):
    """``(first_line, bytes)`` → ``(coin, BarBlock)`` of the wanted coins (main), Rejection
    (``rejected``) and ``("counts", tallies)`` of every line (``summary``: see
    ``ChunkResult.counts``). ``wanted`` None keeps every coin."""

    REJECTED = "rejected"
    SUMMARY = "summary"

    def __init__(self, parser: RowParser, wanted: frozenset[str] | None = None):
        self.parser = parser
        self.wanted = wanted

    def process(self, element: tuple[int, bytes]):
        first_line, data = element
        result = self.parser.parse_chunk(first_line, chunk_lines(data))
        for coin, block in result.blocks.items():
            if self.wanted is None or coin in self.wanted:
                yield coin, block
        for rejection in result.rejections:
            yield TaggedOutput(self.REJECTED, rejection)
        yield TaggedOutput(self.SUMMARY, ("counts", result.counts()))


class SummaryFn(beam.CombineFn):
    """``("counts", tallies)`` of the chunks and ``("coin", info)`` of the coins → one
    ``{"counts": summed tallies, "coins": [info, ...]}``."""

    def create_accumulator(self):
        return {"counts": empty_counts(), "coins": []}

    def add_input(self, acc, element):
        kind, value = element
        if kind == "counts":
            merge_counts(acc["counts"], value)
        else:
            acc["coins"].append(value)
        return acc

    def merge_accumulators(self, accumulators):
        total = self.create_accumulator()
        for acc in accumulators:
            merge_counts(total["counts"], acc["counts"])
            total["coins"].extend(acc["coins"])
        return total

    def extract_output(self, acc):
        return acc


class BuildCoinExamples(beam.DoFn):
    """``(coin, blocks)`` → per non-empty split, the coin's shard rows as a ``PartFile``
    (CSV lines in a part file in ``parts_dir``) keyed for ``WriteSortedCsv``, which
    concatenates them: ``((split, shard), (coin, PartFile))`` (main); ``("coin",
    summary with the train moments)`` (``info``); and the lines rejected per coin
    (``rejected``: see ``series.process_coin``).

    Part files keep the rows out of the shuffle, so memory does not grow with the input.
    The coins of a bundle share part files of about ``part_bytes`` (creating a file costs
    more than writing one). A reference is emitted before its file is flushed: the bundle's
    outputs reach the writer only through a GroupByKey, after the bundle has finished; a
    retried bundle writes new files (the folder is removed after the run).
    """

    INFO = "info"
    REJECTED = "rejected"

    def __init__(
        self,
        fractions: Sequence[float],
        num_shards: int,
        parts_dir: str,
        part_bytes: int | None = None,
        max_move: float = DEFAULT_MAX_DAILY_MOVE,
    ):
        self.max_move = max_move
        self.fractions = tuple(fractions)
        self.num_shards = num_shards
        self.parts_dir = parts_dir
        self.part_bytes = part_bytes or PART_BYTES

    def start_bundle(self):
        self._pending: list[bytes] = []
        self._size = 0
        self._path = ""

    def _flush(self):
        if self._pending:
            with FileSystems.create(self._path, mime_type="text/csv") as handle:
                handle.write(b"".join(self._pending))
        self._pending, self._size, self._path = [], 0, ""

    def _append(self, data: bytes) -> tuple[str, int]:
        if not self._path:
            self._path = FileSystems.join(self.parts_dir, f"part-{uuid.uuid4().hex}.csv")
        where = self._path, self._size
        self._pending.append(data)
        self._size += len(data)
        return where

    def process(self, element):
        coin, blocks = element
        result = process_coin(coin, BarBlock.concat(blocks), self.fractions, max_move=self.max_move)
        for rejection in result.rejections:
            yield TaggedOutput(self.REJECTED, rejection)
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
                data = result.rows(split).csv_text().encode("utf-8")
                path, offset = self._append(data)
                yield (split, shard), (coin, PartFile(path, offset, len(data), counts[split]))
        info = {**result.info(), "train_moments": result.moments()}
        yield TaggedOutput(self.INFO, ("coin", info))
        if self._size >= self.part_bytes:
            self._flush()

    def finish_bundle(self):
        self._flush()


def shard_of(coin: str, num_shards: int) -> int:
    """Stable shard of a coin: every coin lives in one shard of each split."""
    return zlib.crc32(coin.encode()) % num_shards


class CsvRows:
    """Rows already formatted as CSV lines (each ending with a newline)."""

    def __init__(self, text: str, rows: int):
        self.text = text
        self.rows = rows

    def write_to(self, handle, sources: dict | None = None) -> int:
        handle.write(self.text.encode("utf-8"))
        return self.rows

    @classmethod
    def of(cls, fields: Sequence[str]) -> "CsvRows":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(fields)
        return cls(out.getvalue(), 1)


class PartFile:
    """Rows already written as CSV lines: ``size`` bytes at ``offset`` in the file ``path``."""

    def __init__(self, path: str, offset: int, size: int, rows: int):
        self.path = path
        self.offset = offset
        self.size = size
        self.rows = rows

    def write_to(self, handle, sources: dict) -> int:
        """Copy the rows to ``handle``; ``sources`` caches the part files opened so far."""
        if self.path not in sources:
            sources[self.path] = FileSystems.open(
                self.path, compression_type=CompressionTypes.UNCOMPRESSED
            )
        source = sources[self.path]
        source.seek(self.offset)
        left = self.size
        while left > 0:
            block = source.read(min(left, CHUNK_BYTES))
            if not block:
                raise OSError(f"part file {self.path} ends before byte {self.offset + self.size}")
            handle.write(block)
            left -= len(block)
        return self.rows


class WriteSortedCsv(beam.PTransform):
    """``(file_key, (sort_key, rows))`` → the CSV file of ``files[file_key] = (path, header)``:
    the header, then the rows of its elements (``CsvRows`` or ``PartFile``) in sort-key
    order. Yields ``(path, rows written)``.

    Every file is written, empty ones with just the header, so a reader always finds all
    shards. Output is deterministic, so a retried bundle rewrites identical bytes.
    """

    def __init__(self, files: Mapping[Hashable, tuple[str, Sequence[str]]]):
        super().__init__()
        self.files = {key: (path, list(header)) for key, (path, header) in files.items()}

    def expand(self, pcoll):
        every_file = pcoll.pipeline | "EveryFile" >> beam.Create(
            [(key, None) for key in self.files]
        )
        return (
            (pcoll, every_file)
            | "Flatten" >> beam.Flatten()
            | "GroupByFile" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteFile(self.files))
        )


class _WriteFile(beam.DoFn):
    def __init__(self, files: Mapping[Hashable, tuple[str, list[str]]]):
        self.files = files

    def process(self, element):
        key, items = element
        items = sorted((item for item in items if item is not None), key=lambda item: item[0])
        path, header = self.files[key]
        rows = 0
        sources: dict = {}
        try:
            with FileSystems.create(path, mime_type="text/csv") as handle:
                CsvRows.of(header).write_to(handle)
                for _, block in items:
                    rows += block.write_to(handle, sources)
        finally:
            for source in sources.values():
                source.close()
        yield path, rows


class WriteStats(beam.DoFn):
    """Writes ``stats.json`` (``build_stats``) from constants and the ``SummaryFn`` output:
    the summed chunk tallies and the per-coin summaries (train moments merged in coin
    order)."""

    def __init__(self, path: str, **constants):
        self.path = path
        self.constants = constants

    def process(self, summary: dict):
        counts = summary["counts"]
        infos = sorted(summary["coins"], key=lambda info: info["coin"])
        stats = build_stats(
            **self.constants,
            train_moments=merge_moments(info["train_moments"] for info in infos),
            coin_infos=infos,
            **counts,
        )
        # Marked until ``transform.run`` has checked every output (``finish_stats``).
        stats[STATS_FAILED_KEY] = "incomplete: the transform had not finished"
        write_stats(self.path, stats)
        yield self.path


def write_stats(path: str, stats: dict) -> None:
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(stats, indent=2).encode())


#: The ``WriteSortedCsv`` key of the rejected rows' file (shards are ``(split, shard)``).
REJECTED_FILE = ("rejected", 0)


def rejected_item(rejection):
    """Rejection → ``(REJECTED_FILE, (line, CsvRows))``: one rejected file, by line."""
    fields = [str(rejection.line), rejection.reason, rejection.raw]
    return REJECTED_FILE, (rejection.line, CsvRows.of(fields))
