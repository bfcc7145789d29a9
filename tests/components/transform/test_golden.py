"""Today's transform gives the outputs the row-at-a-time transform gave (``golden.json``).

Shards and ``rejected.csv``: the same bytes (SHA-256), so every value is equal to the last
bit; the stored sample rows are compared too, so a failure shows a row. ``stats.json``: the
same document, except that ``mean`` and ``std`` are sums merged in another order (per coin,
then Chan's merge, instead of one row at a time), so they are compared to 1e-12 of the
column's scale, ``max(|mean|, std)``: relative for every mean that is not zero up to
rounding (bitcoin's ``dow_sin`` mean is 1e-17 with a std of 0.7).
"""

from __future__ import annotations

import json

import pytest

from tests.components.transform import golden

pytestmark = pytest.mark.slow
GOLDEN = json.loads(golden.GOLDEN_PATH.read_text())


@pytest.fixture(scope="module")
def records(tmp_path_factory, crypto_csv) -> dict:
    folder = tmp_path_factory.mktemp("golden")
    return {name: golden.run_case(name, folder) for name in golden.CASES}


@pytest.mark.parametrize("case", list(golden.CASES))
def test_shards_are_the_same_bytes(records: dict, case: str) -> None:
    got, want = records[case]["shards"], GOLDEN[case]["shards"]
    assert sorted(got) == sorted(want)
    for name, shard in want.items():
        assert got[name]["rows"] == shard["rows"], name
        assert got[name]["header"] == shard["header"], name
        for index, row in shard["samples"].items():
            assert got[name]["samples"][index] == row, (name, index)
        assert got[name]["sha256"] == shard["sha256"], name


@pytest.mark.parametrize("case", list(golden.CASES))
def test_rejected_rows_are_the_same(records: dict, case: str) -> None:
    assert records[case]["rejected_text"] == GOLDEN[case]["rejected_text"]
    assert records[case]["rejected_sha256"] == GOLDEN[case]["rejected_sha256"]


@pytest.mark.parametrize("case", list(golden.CASES))
def test_stats_are_the_same(records: dict, case: str) -> None:
    got, want = records[case]["stats"], GOLDEN[case]["stats"]
    assert {k: v for k, v in got.items() if k not in ("mean", "std")} == {
        k: v for k, v in want.items() if k not in ("mean", "std")
    }
    for key in ("mean", "std"):
        assert sorted(got[key]) == sorted(want[key])
        for column, value in want[key].items():
            scale = max(abs(want["mean"][column]), want["std"][column])
            assert abs(got[key][column] - value) <= 1e-12 * scale, (key, column)


def test_many_ranges_chunks_and_part_files_give_the_same_outputs(
    tmp_path, monkeypatch, crypto_csv
) -> None:
    """The injected file read as 11 byte ranges in 100 kB chunks, rows in 64 kB part files:
    as parallel workers would, with line numbers across range boundaries."""
    from components.transform import beam_ops

    monkeypatch.setattr(beam_ops, "RANGE_BYTES", 250_000)
    monkeypatch.setattr(beam_ops, "CHUNK_BYTES", 100_000)
    monkeypatch.setattr(beam_ops, "PART_BYTES", 64_000)
    source = golden.write_input("injected", tmp_path)
    assert len(beam_ops.byte_ranges(str(source))) == 11
    record = golden.run_case("injected", tmp_path)
    assert record["rejected_text"] == GOLDEN["injected"]["rejected_text"]
    assert {n: s["sha256"] for n, s in record["shards"].items()} == {
        n: s["sha256"] for n, s in GOLDEN["injected"]["shards"].items()
    }
    assert record["stats"]["coins"] == GOLDEN["injected"]["stats"]["coins"]
    assert sorted(p.name for p in (tmp_path / "out-injected").iterdir()) == [
        "eval-00000-of-00001.csv",
        "rejected.csv",
        "stats.json",
        "test-00000-of-00001.csv",
        "train-00000-of-00001.csv",
    ]


def test_the_injected_case_covers_rejections_blanks_and_duplicates() -> None:
    stats = GOLDEN["injected"]["stats"]
    # 14 bad lines, and both lines of the litecoin day given twice with other values.
    assert stats["rejected_rows"] == 16 and stats["blank_lines"] == 2
    assert len(stats["rejected_reasons"]) == 11
    assert stats["rejected_reasons"]["conflicting_duplicate"] == 2
    assert stats["coins"]["bitcoin"]["duplicate_lines"] == [[20000, 6]]
    assert stats["accepted_rows"] + stats["rejected_rows"] == stats["input_rows"]
