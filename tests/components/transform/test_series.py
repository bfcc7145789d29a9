"""Pure per-coin steps: de-duplication, split sizes, train statistics."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from components.transform.features import Bar
from components.transform.parse import ParsedRow
from components.transform.series import dedupe_bars, parse_split, process_coin, split_sizes
from components.transform.stats import Moments

D0 = dt.date(2021, 1, 4)


def _row(line: int, day: int, close: float = 10.0) -> ParsedRow:
    return ParsedRow(line, "x", Bar(D0 + dt.timedelta(days=day), close, close, close, close, 1.0))


def test_dedupe_sorts_and_keeps_the_first_line_of_a_date() -> None:
    rows = [_row(5, 2, 30.0), _row(2, 0), _row(9, 1, 99.0), _row(3, 1, 20.0), _row(7, 2, 31.0)]
    bars, duplicates = dedupe_bars(rows)
    assert [b.close for b in bars] == [10.0, 20.0, 30.0]
    assert duplicates == 2


@pytest.mark.parametrize(("n", "expected"), [
    (1762, (1233, 264, 265)), (100, (70, 15, 15)), (2, (1, 0, 1)), (0, (0, 0, 0)),
])
def test_split_sizes(n: int, expected: tuple[int, int, int]) -> None:
    assert split_sizes(n, (0.7, 0.15, 0.15)) == expected


@pytest.mark.parametrize("text", ["0.7,0.3", "0.5,0.5,0.5", "0,0.5,0.5", "a,b,c", "0.7,-0.1,0.4"])
def test_bad_split(text: str) -> None:
    with pytest.raises(ValueError, match="split"):
        parse_split(text)


def test_split_from_text_and_tuple() -> None:
    assert parse_split("0.8, 0.1, 0.1") == (0.8, 0.1, 0.1)
    assert parse_split((0.6, 0.2, 0.2)) == (0.6, 0.2, 0.2)


def test_process_coin_splits_by_date_without_overlap() -> None:
    rows = [_row(i + 2, i, 10.0 + (i % 3)) for i in range(100)]
    result = process_coin("x", reversed(rows), (0.7, 0.15, 0.15))
    # 100 days: 30 days of warm-up, the last day has no target -> 69 examples.
    assert result.counts() == {"train": 48, "eval": 10, "test": 11}
    ranges = result.date_ranges()
    assert ranges["train"][1] < ranges["eval"][0] <= ranges["eval"][1] < ranges["test"][0]
    assert ranges["train"][0] == (D0 + dt.timedelta(days=30)).isoformat()
    assert ranges["test"][1] == (D0 + dt.timedelta(days=98)).isoformat()


def test_moments_merge_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    data = rng.normal(3.0, 2.0, size=(500, 2))
    parts = [Moments(("a", "b")) for _ in range(3)]
    for i, (a, b) in enumerate(data):
        parts[i % 3].add({"a": a, "b": b})
    merged = Moments(("a", "b")).merge(parts[0]).merge(parts[1]).merge(parts[2])
    assert merged.n == 500
    assert merged.mean["a"] == pytest.approx(data[:, 0].mean(), rel=1e-12)
    assert merged.std()["b"] == pytest.approx(data[:, 1].std(ddof=0), rel=1e-12)


def test_zero_std_is_stored_as_one() -> None:
    m = Moments(("c",))
    for _ in range(5):
        m.add({"c": 0.25})
    assert m.mean["c"] == 0.25
    assert m.std() == {"c": 1.0}
