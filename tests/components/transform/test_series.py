"""Pure per-coin steps: de-duplication, split sizes, train statistics."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from components.common.features import Bar
from components.transform.parse import ParsedRow
from components.transform.series import (
    SPLITS,
    dedupe_bars,
    parse_split,
    process_coin,
    split_sizes,
)
from components.transform.stats import Moments

D0 = dt.date(2021, 1, 4)


def _row(line: int, day: int, close: float = 10.0) -> ParsedRow:
    return ParsedRow(line, "x", Bar(D0 + dt.timedelta(days=day), close, close, close, close, 1.0))


def test_dedupe_sorts_and_keeps_the_first_line_of_a_date() -> None:
    rows = [_row(5, 2, 30.0), _row(2, 0), _row(9, 1, 99.0), _row(3, 1, 20.0), _row(7, 2, 31.0)]
    bars, dropped = dedupe_bars(rows)
    assert bars.close.tolist() == [10.0, 20.0, 30.0]
    assert bars.line.tolist() == [2, 3, 5]
    # Line 9 (day 1) lost to line 3, line 7 (day 2) to line 5.
    assert dropped == [(9, 3), (7, 5)]


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1762, (1233, 264, 265)),
        (100, (70, 15, 15)),
        (2, (1, 0, 1)),
        (0, (0, 0, 0)),
    ],
)
def test_split_sizes(n: int, expected: tuple[int, int, int]) -> None:
    assert split_sizes(n, (0.7, 0.15, 0.15)) == expected


@pytest.mark.parametrize("text", ["0.7,0.3", "0.5,0.5,0.5", "0,0.5,0.5", "a,b,c", "0.7,-0.1,0.4"])
def test_bad_split(text: str) -> None:
    with pytest.raises(ValueError, match="split"):
        parse_split(text)


def test_split_from_text_and_tuple() -> None:
    assert parse_split("0.8, 0.1, 0.1") == (0.8, 0.1, 0.1)
    assert parse_split((0.6, 0.2, 0.2)) == (0.6, 0.2, 0.2)


def _day(day: int) -> str:
    return (D0 + dt.timedelta(days=day)).isoformat()


def test_process_coin_splits_by_date_without_overlap() -> None:
    rows = [_row(i + 2, i, 10.0 + (i % 3)) for i in range(100)]
    result = process_coin("x", reversed(rows), (0.7, 0.15, 0.15))
    # 100 days: 30 days of warm-up, the last day has no target -> 69 examples (days 30..98),
    # sized 48 / 10 / 11; the last train day (77) and the last eval day (87) are purged.
    assert result.counts() == {"train": 47, "eval": 9, "test": 11}
    ranges = result.date_ranges()
    assert ranges["train"][1] < ranges["eval"][0] <= ranges["eval"][1] < ranges["test"][0]
    assert ranges == {
        "train": (_day(30), _day(76)),
        "eval": (_day(78), _day(86)),
        "test": (_day(88), _day(98)),
    }


def _split_dates(result) -> dict[str, list[dt.date]]:
    return {s: result.dates(s) for s in SPLITS}


@pytest.mark.parametrize(
    ("days", "fractions"),
    [
        (range(100), (0.7, 0.15, 0.15)),
        (range(40), (0.7, 0.15, 0.15)),  # a one-row eval split, purged to nothing
        (range(80), (0.6, 0.2, 0.2)),
        (range(80), (0.5, 0.5, 0.0)),  # no test split
        (range(80), (0.5, 0.0, 0.5)),  # no eval split: train borders test
        ([*range(40), *range(43, 83)], (0.7, 0.15, 0.15)),  # a calendar gap
    ],
)
def test_no_target_day_falls_in_a_later_split(days, fractions) -> None:
    result = process_coin("x", [_row(d + 2, d, 10.0 + d % 3) for d in days], fractions)
    dates = _split_dates(result)
    boundaries = 0
    for i, split in enumerate(SPLITS):
        later = [d for s in SPLITS[i + 1 :] for d in dates[s]]
        if not later or not dates[split]:
            continue
        boundaries += 1
        # Every row's target is the return into date + 1: that day precedes every later row.
        assert all(d + dt.timedelta(days=1) < min(later) for d in dates[split]), split
    assert boundaries >= 1


@pytest.mark.parametrize(
    ("days", "fractions", "counts", "purged"),
    [
        # 69 examples (days 30..98) unless noted; sizes from split_sizes, then the purge.
        (100, (0.7, 0.15, 0.15), (47, 9, 11), {77, 87}),  # sized 48 / 10 / 11
        (100, (0.6, 0.2, 0.2), (40, 13, 14), {70, 84}),  # sized 41 / 14 / 14
        (100, (0.5, 0.5, 0.0), (33, 35, 0), {63}),  # sized 34 / 35 / 0: one boundary
        (100, (0.5, 0.0, 0.5), (33, 0, 35), {63}),  # sized 34 / 0 / 35: one boundary
        (100, (1.0, 0.0, 0.0), (69, 0, 0), set()),  # no boundary: nothing purged
        (40, (0.7, 0.15, 0.15), (5, 0, 2), {35, 36}),  # 9 examples (30..38) sized 6 / 1 / 2
    ],
)
def test_exactly_one_row_is_purged_per_boundary(days: int, fractions, counts, purged) -> None:
    result = process_coin("x", [_row(d + 2, d, 10.0 + d % 3) for d in range(days)], fractions)
    # One purged row per boundary between the non-empty splits, as sized before the purge.
    non_empty = [n for n in split_sizes(days - 31, fractions) if n]
    assert len(purged) == len(non_empty) - 1
    assert tuple(result.counts().values()) == counts
    assert sum(counts) == days - 31 - len(purged)
    kept = set(result.dates())
    assert kept == {D0 + dt.timedelta(days=d) for d in range(30, days - 1)} - {
        D0 + dt.timedelta(days=d) for d in purged
    }
    assert result.info()["counts"] == dict(zip(SPLITS, counts, strict=True))


@pytest.mark.parametrize(
    ("days", "counts"),
    [
        (0, (0, 0, 0)),
        (18, (0, 0, 0)),
        (31, (0, 0, 0)),  # no example at all
        (32, (0, 0, 1)),  # 1 example: test only, no boundary
        (33, (0, 0, 1)),  # sized 1 / 0 / 1: train purged away
        (34, (1, 0, 1)),  # sized 2 / 0 / 1
    ],
)
def test_a_coin_too_short_for_the_splits_does_not_crash(days: int, counts) -> None:
    result = process_coin("x", [_row(d + 2, d) for d in range(days)], (0.7, 0.15, 0.15))
    assert tuple(result.counts().values()) == counts
    assert result.bars == days
    assert set(result.date_ranges()) == {s for s, n in zip(SPLITS, counts, strict=True) if n}


def test_moments_merge_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    data = rng.normal(3.0, 2.0, size=(500, 2))
    parts = [Moments.of(data[i::3], ("a", "b")) for i in range(3)]
    merged = Moments(("a", "b")).merge(parts[0]).merge(parts[1]).merge(parts[2])
    assert merged.n == 500
    assert merged.mean["a"] == pytest.approx(data[:, 0].mean(), rel=1e-12)
    assert merged.std()["b"] == pytest.approx(data[:, 1].std(ddof=0), rel=1e-12)


def test_zero_std_is_stored_as_one() -> None:
    m = Moments.of(np.full((5, 1), 0.25), ("c",))
    assert m.mean["c"] == 0.25
    assert m.std() == {"c": 1.0}
