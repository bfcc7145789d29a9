"""The transform step: raw OHLCV CSV → validated, feature-engineered, time-split CSV shards.

``run`` builds and runs an Apache Beam pipeline. Locally it uses Beam's in-process
FnApiRunner (nothing is downloaded); ``runner="dataflow"`` runs the same pipeline on
Dataflow with options from ``components.transform.dataflow``.

Outputs, each at the path it is given: ``features_path``, a directory of
``{train,eval,test}-NNNNN-of-NNNNN.csv`` shards (header ``coin,date,close,<FEATURE_NAMES>,target``,
rows sorted by coin and date); ``rejected_path``, a CSV of the rejected lines (line, reason,
raw); ``stats_path``, ``stats.json`` (components/README.md).

The pipeline (``build_pipeline``): byte ranges of the input are read and parsed in bulk in
parallel (``beam_ops.ReadLineChunks``, ``ParseChunks``: accepted rows as one column block
per coin and chunk, rejections, tallies); blocks are grouped by coin and each coin is
processed in one step on numpy arrays (``series.process_coin``: dedupe, gaps, features,
target, split, purge), its rows written to part files; one writer per shard concatenates
the parts in coin order; the tallies and per-coin summaries (train moments merged with
Chan's formula) make ``stats.json``. During a run the part files live in a hidden
``.parts-<id>`` folder in ``features_path``, removed when the pipeline ends.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import AsList

from components.common.contracts import (
    SHARD_COLUMNS,
    SPLITS,
    STATS_FAILED_KEY,
    shard_glob,
    shard_names,
)
from components.common.features import HISTORY_DAYS
from components.common.results import StepResult, raise_for_problems
from components.transform import beam_ops
from components.transform.errors import TransformError, TransformParameterError
from components.transform.parameters import check_parameters, parse_as_of, parse_coins
from components.transform.parse import (
    DEFAULT_MAX_INTRADAY_RANGE,
    DEFAULT_PRICE_TOLERANCE,
    RowParser,
)
from components.transform.series import DEFAULT_MAX_DAILY_MOVE, DEFAULT_SPLIT, parse_split

log = logging.getLogger(__name__)

#: Name prefix of a run's folder of part files in ``features_path`` (``parts_dir_for``).
PARTS_PREFIX = ".parts-"
REJECTED_COLUMNS = ("line", "reason", "raw")


class RejectedRowsError(TransformError):
    """Too many rows were rejected. The rejected rows were written; the shards were removed
    and ``stats.json`` (its counts kept for a person to read) is marked failed."""

    def __init__(self, message: str, result: TransformResult):
        super().__init__(message)
        self.result = result


@dataclass
class TransformResult(StepResult):
    """What a transform run produced; ``coins`` holds per-coin counts from stats.json."""

    features_path: str
    stats_path: str
    rejected_path: str
    input_rows: int
    accepted_rows: int
    rejected_rows: int
    blank_lines: int
    feature_names: list[str] = field(default_factory=list)
    splits: dict[str, dict] = field(default_factory=dict)
    coins: dict[str, dict] = field(default_factory=dict)
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: Sentences about what the run accepted but a person should know (stats.json too).
    warnings: list[str] = field(default_factory=list)

    @property
    def rejected_fraction(self) -> float:
        total = self.accepted_rows + self.rejected_rows
        return self.rejected_rows / total if total else 0.0

    @property
    def duplicates(self) -> int:
        return sum(c["duplicates"] for c in self.coins.values())

    @property
    def gaps(self) -> int:
        return sum(c["gaps"] for c in self.coins.values())

    def metrics(self) -> dict[str, float]:
        return {
            **{f"{split}_rows": info["rows"] for split, info in self.splits.items()},
            "input_rows": self.input_rows,
            "rejected_rows": self.rejected_rows,
            "rejected_fraction": self.rejected_fraction,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "coins": len(self.coins),
        }

    def output_metadata(self) -> dict[str, dict]:
        stats: dict = {"feature_names": self.feature_names, "splits": self.splits}
        if self.warnings:
            stats["warnings"] = list(self.warnings)
        return {
            "features": {
                "format": "csv",
                "coins": sorted(self.coins),
                **{f"{split}_rows": info["rows"] for split, info in self.splits.items()},
            },
            "stats": stats,
            "rejected": {"rows": self.rejected_rows, "reasons": dict(self.rejected_reasons)},
        }

    def table(self) -> str:
        """Per-coin counts as a fixed-width text table, with a total line."""
        head = (
            f"{'coin':<20} {'days':>6} {'train':>6} {'eval':>6} {'test':>6} {'dups':>5} {'gaps':>5}"
        )
        lines = [head, "-" * len(head)]
        for coin, c in sorted(self.coins.items()):
            lines.append(
                f"{coin:<20} {c['bars']:>6} {c['train']:>6} {c['eval']:>6} "
                f"{c['test']:>6} {c['duplicates']:>5} {c['gaps']:>5}"
            )
        totals = {k: sum(c[k] for c in self.coins.values()) for k in ("bars", *SPLITS)}
        lines.append(
            f"{f'total ({len(self.coins)} coins)':<20} {totals['bars']:>6} "
            f"{totals['train']:>6} {totals['eval']:>6} {totals['test']:>6} "
            f"{self.duplicates:>5} {self.gaps:>5}"
        )
        lines.append(
            f"input rows {self.input_rows}: accepted {self.accepted_rows}, rejected "
            f"{self.rejected_rows} ({self.rejected_fraction:.2%}); blank lines "
            f"{self.blank_lines}; {self.seconds:.1f} s"
        )
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def read_header(input_path: str) -> str:
    """The first line of the input; TransformError when missing or empty."""
    try:
        exists = FileSystems.exists(input_path)
    except Exception as exc:  # e.g. an unknown scheme or missing credentials for gs://
        raise TransformError(f"cannot access input {input_path}: {exc}") from exc
    if not exists:
        raise TransformError(f"input not found: {input_path}")
    with FileSystems.open(input_path) as handle:
        first = handle.readline()
    if not first.strip():
        raise TransformError(
            f"input {input_path} is empty or starts with a blank line; expected a CSV header"
        )
    return first.decode("utf-8-sig", errors="replace")


def _prepare_outputs(features_path: str, stats_path: str, rejected_path: str) -> None:
    """Create local output folders; remove shards an earlier run left in ``features_path``
    (and only those: the two files are overwritten by this run)."""
    for folder in (features_path, os.path.dirname(stats_path), os.path.dirname(rejected_path)):
        if folder and FileSystems.get_scheme(folder) in (None, "file"):
            os.makedirs(folder, exist_ok=True)
    patterns = [FileSystems.join(features_path, shard_glob(split)) for split in SPLITS]
    stale = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
    if FileSystems.exists(stats_path):  # never left beside this run's shards
        stale.append(stats_path)
    if stale:
        log.info("removing the outputs of an earlier run: %s", ", ".join(stale))
        FileSystems.delete(stale)
    # Part files of a run that was killed before it could remove them (remove_parts).
    if FileSystems.get_scheme(features_path) in (None, "file"):
        leftovers = glob.glob(os.path.join(glob.escape(features_path), f"{PARTS_PREFIX}*"))
    else:
        pattern = FileSystems.join(features_path, f"{PARTS_PREFIX}*/*")
        leftovers = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    if leftovers:
        log.info("removing part files of an earlier run from %s", features_path)
        FileSystems.delete(leftovers)


def parts_dir_for(features_path: str) -> str:
    """A new folder in ``features_path`` for one run's per-coin part files."""
    return FileSystems.join(features_path, f"{PARTS_PREFIX}{uuid.uuid4().hex}")


def remove_parts(parts_dir: str) -> None:
    """Delete a run's part files (all of them, with their folder)."""
    try:
        if FileSystems.get_scheme(parts_dir) == "gs":
            FileSystems.delete([parts_dir.rstrip("/") + "/"])
        elif FileSystems.exists(parts_dir):
            FileSystems.delete([parts_dir])
    except Exception as exc:  # the outputs are complete: a leftover is only untidy
        log.warning("could not remove the part files in %s: %s", parts_dir, exc)


def _make_pipeline(runner: str, pipeline_options: Mapping | None) -> beam.Pipeline:
    if runner == "local":
        # FnApiRunner: Beam's in-process portable runner. Plain DirectRunner would first
        # try PrismRunner, which downloads a binary; the FnApiRunner needs nothing.
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        options = PipelineOptions(flags=[], **(pipeline_options or {}))
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    from components.transform.dataflow import dataflow_options

    if not pipeline_options:
        raise TransformParameterError(
            "runner 'dataflow' needs pipeline_options: project, region, temp_location, "
            "staging_location, ... (see dataflow_options)"
        )
    return beam.Pipeline(options=dataflow_options(**pipeline_options))


def build_pipeline(
    p: beam.Pipeline,
    input_path: str,
    *,
    features_path: str,
    stats_path: str,
    rejected_path: str,
    parser: RowParser,
    wanted: frozenset[str] | None,
    fractions: Sequence[float],
    num_shards: int,
    parts_dir: str | None = None,
    max_move: float = DEFAULT_MAX_DAILY_MOVE,
    warn_usable_fraction: float = 0.0,
) -> None:
    """Add the whole transform to ``p``: read ``input_path``, write the three outputs.

    ``parts_dir``: where each coin's rows wait for the shard writer (``parts_dir_for``); the
    caller removes it when the pipeline is done (``remove_parts``).
    """
    parts_dir = parts_dir or parts_dir_for(features_path)
    # Byte ranges of the file are read and parsed in parallel (Create spreads them over
    # workers); each range's first line number comes from the newline counts of the ranges
    # before it.
    ranges = p | "Ranges" >> beam.Create(beam_ops.byte_ranges(input_path))
    newlines = ranges | "CountNewlines" >> beam.Map(beam_ops.count_newlines, input_path)
    chunks = ranges | "ReadChunks" >> beam.ParDo(
        beam_ops.ReadLineChunks(input_path), newlines=AsList(newlines)
    )
    parsed = chunks | "Parse" >> beam.ParDo(beam_ops.ParseChunks(parser, wanted)).with_outputs(
        beam_ops.ParseChunks.REJECTED, beam_ops.ParseChunks.SUMMARY, main="accepted"
    )
    per_coin = (
        parsed.accepted
        | "GroupByCoin" >> beam.GroupByKey()
        | "Examples"
        >> beam.ParDo(
            beam_ops.BuildCoinExamples(fractions, num_shards, parts_dir, max_move=max_move)
        )
        # (the TaggedOutput it also yields would otherwise be inferred as a main output)
        .with_output_types(tuple[Any, Any])
        .with_outputs(
            beam_ops.BuildCoinExamples.INFO, beam_ops.BuildCoinExamples.REJECTED, main="rows"
        )
    )
    files = {
        (split, shard): (FileSystems.join(features_path, name), SHARD_COLUMNS)
        for split in SPLITS
        for shard, name in enumerate(shard_names(split, num_shards))
    }
    files[beam_ops.REJECTED_FILE] = (rejected_path, REJECTED_COLUMNS)
    rejected = (
        (parsed.rejected, per_coin.rejected)
        | "AllRejected" >> beam.Flatten()
        | "RejectedItems" >> beam.Map(beam_ops.rejected_item)
    )
    (
        (per_coin.rows, rejected)
        | "AllRows" >> beam.Flatten()
        | "WriteCsv" >> beam_ops.WriteSortedCsv(files)
    )
    # Input rows are counted from the raw lines, independently of the parser's verdicts.
    # Every run has at least one chunk (ReadLineChunks), so the summary always exists.
    (
        (parsed.summary, per_coin.info)
        | "SummaryParts" >> beam.Flatten()
        | "Summary" >> beam.CombineGlobally(beam_ops.SummaryFn()).without_defaults()
        | "WriteStats"
        >> beam.ParDo(
            beam_ops.WriteStats(
                stats_path,
                split_fractions=list(fractions),
                input_path=input_path,
                warn_usable_fraction=warn_usable_fraction,
            )
        )
    )


def run(
    raw_path: str,
    *,
    features_path: str,
    stats_path: str,
    rejected_path: str,
    coins: str = "bitcoin",
    split: str | Sequence[float] = DEFAULT_SPLIT,
    max_rejected_fraction: float = 0.05,
    column_mapping: str | Mapping[str, str] | None = None,
    runner: str = "local",
    pipeline_options: Mapping | None = None,
    num_shards: int = 1,
    price_tolerance: float = DEFAULT_PRICE_TOLERANCE,
    max_daily_move: float = DEFAULT_MAX_DAILY_MOVE,
    max_intraday_range: float = DEFAULT_MAX_INTRADAY_RANGE,
    as_of: str | dt.date | None = None,
    warn_usable_fraction: float = 0.5,
    min_usable_fraction: float = 0.25,
) -> TransformResult:
    """Run the transform on ``raw_path``; see the module docstring for the three outputs.

    ``coins``: ``"all"``, a slug or a comma list (case-insensitive). ``split``: train,
    eval, test fractions of each coin's dates (then the last day of each split that a later
    one follows is purged, see ``series.process_coin``). ``pipeline_options``: for
    ``"dataflow"`` the keyword arguments of ``dataflow_options``; for ``"local"`` extra
    Beam options.

    What cannot be modelled is rejected with its reason: a day whose high/low exceeds
    ``max_intraday_range`` (``implausible_range``) or whose close is more than
    ``max_daily_move`` times (or less than its inverse) the coin's previous accepted close
    (``implausible_move``); both defaults keep every real day of the shared file (its
    extremes: high/low 333,501 and a 69,000-fold move, veritaseum in June 2017; ``inf``
    turns a check off). Dates after ``as_of`` (default: today, UTC) are rejected as
    ``future_date``; every line of a date whose lines disagree as
    ``conflicting_duplicate``; a day whose features or target are not finite as
    ``non_finite_feature``.

    Gaps restart each coin's warm-up: when a coin keeps fewer than
    ``warn_usable_fraction`` of the examples a gap-free history as long would give, the
    result and ``stats.json`` carry a warning; below ``min_usable_fraction`` the run fails.
    (The shared file's most gapped coin, maker, keeps 83%; one rejected row in 20, spread
    evenly, leaves runs shorter than the warm-up: nothing usable.)

    Raises TransformParameterError for bad parameters, TransformError for a missing input or
    unusable data, SchemaError for a header without the required columns, and
    RejectedRowsError when more than ``max_rejected_fraction`` of the data rows are
    rejected. A run that fails leaves no shards and a ``stats.json`` marked failed (its
    ``failed`` key says why; train refuses it), with ``rejected_path`` written when the
    pipeline got that far.
    """
    started = time.monotonic()
    raise_for_problems(
        check_parameters(
            coins=coins,
            split=split,
            max_rejected_fraction=max_rejected_fraction,
            column_mapping=column_mapping,
            runner=runner,
            num_shards=num_shards,
            price_tolerance=price_tolerance,
            max_daily_move=max_daily_move,
            max_intraday_range=max_intraday_range,
            as_of=as_of,
            warn_usable_fraction=warn_usable_fraction,
            min_usable_fraction=min_usable_fraction,
        ),
        TransformParameterError,
    )
    fractions = parse_split(split)
    wanted = parse_coins(coins)
    max_date = parse_as_of(as_of)
    outputs = (features_path, stats_path, rejected_path)
    if runner == "dataflow":
        local = [p for p in (raw_path, *outputs) if FileSystems.get_scheme(p) != "gs"]
        if local:
            raise TransformParameterError(
                f"Dataflow workers read and write gs:// only, got {', '.join(local)}"
            )
    parser = RowParser.from_header(
        read_header(raw_path),
        column_mapping,
        price_tolerance,
        max_range=max_intraday_range,
        max_date=max_date,
    )
    pipeline = _make_pipeline(runner, pipeline_options)

    _prepare_outputs(*outputs)
    log.info(
        "transform %s → %s (coins %s, split %s, runner %s)",
        raw_path,
        features_path,
        "all" if wanted is None else ",".join(sorted(wanted)),
        fractions,
        runner,
    )
    parts_dir = parts_dir_for(features_path)
    build_pipeline(
        pipeline,
        raw_path,
        features_path=features_path,
        stats_path=stats_path,
        rejected_path=rejected_path,
        parser=parser,
        wanted=wanted,
        fractions=fractions,
        num_shards=num_shards,
        parts_dir=parts_dir,
        max_move=max_daily_move,
        warn_usable_fraction=warn_usable_fraction,
    )
    try:
        result, stats = _run_and_check(
            pipeline,
            runner,
            parts_dir,
            outputs,
            started,
            wanted,
            max_rejected_fraction,
            min_usable_fraction,
        )
    except BaseException as exc:
        _invalidate(features_path, stats_path, exc)
        raise
    del stats[STATS_FAILED_KEY]
    beam_ops.write_stats(stats_path, stats)  # the outputs are valid from here on
    return result


def _invalidate(features_path: str, stats_path: str, exc: BaseException) -> None:
    """After a failure: remove this run's shards and mark ``stats.json`` failed, so no later
    step takes the outputs for valid (the rejected rows stay, to show what went wrong)."""
    try:
        patterns = [FileSystems.join(features_path, shard_glob(split)) for split in SPLITS]
        shards = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list]
        if shards:
            FileSystems.delete(shards)
        if FileSystems.exists(stats_path):
            with FileSystems.open(stats_path) as handle:
                stats = json.loads(handle.read())
            stats[STATS_FAILED_KEY] = f"{type(exc).__name__}: {exc}"
            beam_ops.write_stats(stats_path, stats)
    except Exception as cleanup:  # the original error matters more
        log.warning("could not invalidate the outputs of the failed run: %s", cleanup)


def _run_and_check(
    pipeline,
    runner,
    parts_dir,
    outputs,
    started,
    wanted,
    max_rejected_fraction,
    min_usable_fraction,
) -> tuple[TransformResult, dict]:
    features_path, stats_path, rejected_path = outputs
    try:
        if runner == "dataflow":
            from components.transform.dataflow import run_and_wait

            state = run_and_wait(pipeline)  # streams the job's state and messages to the log
        else:
            state = pipeline.run().wait_until_finish()
    finally:
        remove_parts(parts_dir)
    if state not in (None, "DONE"):
        raise TransformError(f"the Beam pipeline ended in state {state}")

    # The pipeline's counts reach this process only through the file it wrote (on Dataflow
    # the workers are other machines): read it once, here.
    with FileSystems.open(stats_path) as handle:
        stats = json.loads(handle.read())
    result = TransformResult(
        features_path=features_path,
        stats_path=stats_path,
        rejected_path=rejected_path,
        input_rows=stats["input_rows"],
        accepted_rows=stats["accepted_rows"],
        rejected_rows=stats["rejected_rows"],
        blank_lines=stats["blank_lines"],
        feature_names=stats["feature_names"],
        splits=stats["splits"],
        coins=stats["coins"],
        rejected_reasons=stats["rejected_reasons"],
        seconds=time.monotonic() - started,
        warnings=list(stats.get("warnings", [])),
    )
    log.info("transform done in %.1f s\n%s", result.seconds, result.table())
    _check(result, stats, wanted, max_rejected_fraction)
    unusable = {
        coin: share
        for coin, share in stats.get("low_usable_coins", {}).items()
        if share < min_usable_fraction
    }
    if unusable:
        shares = ", ".join(f"{coin} {share:.1%}" for coin, share in unusable.items())
        raise TransformError(
            f"gaps leave too few usable rows: {shares} of the examples a gap-free history "
            f"would give, less than min_usable_fraction {min_usable_fraction:g} (each gap, "
            f"a rejected row included, restarts the {HISTORY_DAYS}-day warm-up). Rejected "
            f"rows are in {rejected_path}."
        )
    return result, stats


def _check(result: TransformResult, stats: dict, wanted, max_rejected_fraction: float) -> None:
    """Raise for a run whose output must not be used."""
    if result.accepted_rows + result.rejected_rows != result.input_rows:
        raise TransformError(
            f"internal error: accepted {result.accepted_rows} + rejected "
            f"{result.rejected_rows} != input rows {result.input_rows}"
        )
    if result.input_rows == 0:
        raise TransformError(f"input {stats['input']} has a header but no data rows")
    if result.rejected_fraction > max_rejected_fraction:
        top = ", ".join(f"{code} ({n})" for code, n in list(result.rejected_reasons.items())[:5])
        raise RejectedRowsError(
            f"{result.rejected_rows} of {result.input_rows} input rows rejected "
            f"({result.rejected_fraction:.2%}), more than the allowed "
            f"{max_rejected_fraction:.2%} (max_rejected_fraction). Top reasons: {top}. "
            f"Rejected rows (line, reason, raw) are in {result.rejected_path}; "
            f"counts in {result.stats_path}.",
            result,
        )
    if wanted is not None:
        missing = sorted(wanted - set(stats["coins_in_input"]))
        if missing:
            available = ", ".join(stats["coins_in_input"]) or "none"
            raise TransformError(
                f"coins not in the input: {', '.join(missing)}. Available: {available}"
            )
    if result.splits["train"]["rows"] == 0:
        split = ",".join(f"{f:g}" for f in stats["split_fractions"])
        per_coin = {c: v["bars"] for c, v in result.coins.items()}
        raise TransformError(
            f"no training rows with split {split}: a coin needs at least {HISTORY_DAYS + 1} "
            f"consecutive days ({HISTORY_DAYS} of history and a known next day), and its train "
            "share needs 2 examples when eval or test follow (the last train day is purged at "
            f"the boundary); per-coin days: {per_coin}"
        )
