"""The transform step: raw OHLCV CSV → validated, feature-engineered, time-split CSV shards.

``run`` builds and runs an Apache Beam pipeline. Locally it uses Beam's in-process
FnApiRunner (nothing is downloaded); ``runner="dataflow"`` runs the same pipeline on
Dataflow with options from ``components.transform.dataflow``.

Outputs, each at the path it is given: ``features_path``, a directory of
``{train,eval,test}-NNNNN-of-NNNNN.csv`` shards (header ``coin,date,close,<FEATURE_NAMES>,target``,
rows sorted by coin and date); ``rejected_path``, a CSV of the rejected lines (line, reason,
raw); ``stats_path``, ``stats.json`` (components/README.md).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import AsSingleton

from components.common.contracts import SHARD_COLUMNS, SPLITS, shard_glob, shard_names
from components.common.features import HISTORY_DAYS
from components.common.results import StepResult
from components.transform import beam_ops
from components.transform.errors import TransformError, TransformParameterError
from components.transform.parse import DEFAULT_PRICE_TOLERANCE, RowParser
from components.transform.series import DEFAULT_SPLIT, parse_split

log = logging.getLogger(__name__)

RUNNERS = ("local", "dataflow")
REJECTED_COLUMNS = ("line", "reason", "raw")


class RejectedRowsError(TransformError):
    """Too many rows were rejected. The outputs, rejected rows included, were written."""

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
        return {
            "features": {
                "format": "csv",
                "coins": sorted(self.coins),
                **{f"{split}_rows": info["rows"] for split, info in self.splits.items()},
            },
            "stats": {"feature_names": self.feature_names, "splits": self.splits},
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
        return "\n".join(lines)


def parse_coins(coins: str | Sequence[str]) -> frozenset[str] | None:
    """``"all"`` → None (every coin); ``"bitcoin,Ethereum"`` → lower-case slugs."""
    items = coins.split(",") if isinstance(coins, str) else list(coins)
    slugs = frozenset(c.strip().lower() for c in items if c.strip())
    if not slugs:
        raise TransformParameterError(
            "coins must be 'all' or a comma-separated list of slugs, got nothing"
        )
    return None if slugs == {"all"} else slugs


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
    if stale:
        log.info("removing %d shards of an earlier run from %s", len(stale), features_path)
        FileSystems.delete(stale)


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
) -> None:
    """Add the whole transform to ``p``: read ``input_path``, write the three outputs."""
    # One worker reads the file in order (line numbers); the reshuffle lets the parsing
    # after it spread over workers on Dataflow instead of being fused to that reader.
    lines = (
        p
        | "Input" >> beam.Create([input_path])
        | "ReadLines" >> beam.ParDo(beam_ops.ReadNumberedLines())
        | "Spread" >> beam.Reshuffle()
    )
    parsed = lines | "Parse" >> beam.ParDo(beam_ops.ParseLines(parser)).with_outputs(
        beam_ops.ParseLines.REJECTED, beam_ops.ParseLines.BLANK, main="accepted"
    )
    accepted, rejected, blank = parsed.accepted, parsed.rejected, parsed.blank

    chosen = accepted | "ChosenCoins" >> beam.Filter(lambda r: wanted is None or r.coin in wanted)
    per_coin = (
        chosen
        | "KeyByCoin" >> beam.Map(lambda r: (r.coin, r))
        | "GroupByCoin" >> beam.GroupByKey()
        | "Examples"
        >> beam.ParDo(beam_ops.BuildCoinExamples(fractions)).with_outputs(
            beam_ops.BuildCoinExamples.INFO, main="examples"
        )
    )
    by_split = per_coin.examples | "BySplit" >> beam.Partition(
        lambda e, _: SPLITS.index(e[0]), len(SPLITS)
    )
    for split, examples in zip(SPLITS, by_split, strict=True):
        paths = [FileSystems.join(features_path, n) for n in shard_names(split, num_shards)]
        (
            examples
            | f"{split}Items" >> beam.Map(beam_ops.example_item, num_shards)
            | f"Write{split}" >> beam_ops.WriteSortedCsv(paths, SHARD_COLUMNS)
        )
    (
        rejected
        | "RejectedItems" >> beam.Map(beam_ops.rejected_item)
        | "WriteRejected" >> beam_ops.WriteSortedCsv([rejected_path], REJECTED_COLUMNS)
    )

    def count(pcoll, label):
        return AsSingleton(pcoll | label >> beam.combiners.Count.Globally())

    def tally(pcoll, label, key):
        return AsSingleton(
            pcoll
            | f"{label}Key" >> beam.Map(key)
            | f"{label}Count" >> beam.combiners.Count.PerElement()
            | f"{label}Dict" >> beam.combiners.ToDict()
        )

    # Input rows are counted from the raw lines, independently of the parser's verdicts.
    data_lines = lines | "DataLines" >> beam.Filter(lambda e: e[1].strip())
    train_moments = (
        by_split[0]
        | "TrainExamples" >> beam.Map(lambda e: e[2])
        | "TrainMoments" >> beam.CombineGlobally(beam_ops.MomentsFn())
    )
    coin_infos = per_coin.info | "CoinInfos" >> beam.combiners.ToList()
    (
        p
        | "StatsSeed" >> beam.Create([None])
        | "WriteStats"
        >> beam.ParDo(
            beam_ops.WriteStats(stats_path, split_fractions=list(fractions), input_path=input_path),
            train_moments=AsSingleton(train_moments),
            coin_infos=AsSingleton(coin_infos),
            input_rows=count(data_lines, "CountInput"),
            accepted_rows=count(accepted, "CountAccepted"),
            rejected_rows=count(rejected, "CountRejected"),
            blank_lines=count(blank, "CountBlank"),
            rejected_reasons=tally(rejected, "Reasons", lambda r: r.code),
            coins_in_input=tally(accepted, "CoinsInInput", lambda r: r.coin),
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
) -> TransformResult:
    """Run the transform on ``raw_path``; see the module docstring for the three outputs.

    ``coins``: ``"all"``, a slug or a comma list (case-insensitive). ``split``: train,
    eval, test fractions of each coin's dates (then the last day of each split that a later
    one follows is purged, see ``series.process_coin``). ``pipeline_options``: for
    ``"dataflow"`` the keyword arguments of ``dataflow_options``; for ``"local"`` extra
    Beam options.

    Raises TransformParameterError for bad parameters, TransformError for a missing input or
    unusable data, SchemaError for a header without the required columns, and
    RejectedRowsError (after writing every output) when more than ``max_rejected_fraction``
    of the data rows are rejected.
    """
    started = time.monotonic()
    try:
        fractions = parse_split(split)
    except ValueError as exc:
        raise TransformParameterError(str(exc)) from None
    wanted = parse_coins(coins)
    if not 0 <= max_rejected_fraction <= 1:
        raise TransformParameterError(
            f"max_rejected_fraction must be in [0, 1], got {max_rejected_fraction}"
        )
    if num_shards < 1:
        raise TransformParameterError(f"num_shards must be >= 1, got {num_shards}")
    if runner not in RUNNERS:
        raise TransformParameterError(
            f"unknown runner {runner!r}; expected one of {', '.join(RUNNERS)}"
        )
    if not 0 <= price_tolerance < 1:
        raise TransformParameterError(f"price_tolerance must be in [0, 1), got {price_tolerance}")
    outputs = (features_path, stats_path, rejected_path)
    if runner == "dataflow":
        local = [p for p in (raw_path, *outputs) if FileSystems.get_scheme(p) != "gs"]
        if local:
            raise TransformParameterError(
                f"Dataflow workers read and write gs:// only, got {', '.join(local)}"
            )
    parser = RowParser.from_header(read_header(raw_path), column_mapping, price_tolerance)
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
    )
    if runner == "dataflow":
        from components.transform.dataflow import run_and_wait

        state = run_and_wait(pipeline)  # streams the job's state and messages to the log
    else:
        state = pipeline.run().wait_until_finish()
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
    )
    log.info("transform done in %.1f s\n%s", result.seconds, result.table())
    _check(result, stats, wanted, max_rejected_fraction)
    return result


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
