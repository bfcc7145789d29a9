"""Today's transform gives the outputs of ``golden.json`` (see ``golden.py`` for its
history: the row-at-a-time transform, then the volatility features appended).

Shards and ``rejected.csv``: the same bytes (SHA-256), so every value is equal to the last
bit; the stored sample rows are compared too, so a failure shows a row. ``stats.json``: the
same document, except that ``mean`` and ``std`` are sums whose merge order may change (per
coin, then Chan's merge; the row-at-a-time transform summed one row at a time), so they are
compared to 1e-12 of the column's scale, ``max(|mean|, std)``: relative for every mean that
is not zero up to rounding (bitcoin's ``dow_sin`` mean is 1e-17 with a std of 0.7).
"""

from __future__ import annotations

import hashlib
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


#: SHA-256 of each split's one shard as the record before the volatility features held it
#: (the row-at-a-time transform's bytes; "injected" as regenerated for issue 12).
ROW_AT_A_TIME_SHA256 = {
    "all": {
        "eval": "812fe1189beb1d1fd7c24733874b7cfcac033bc465a944153753347ee575e767",
        "test": "1c1ea29f4fc9eb8de5cebaabd40b3c86179e09b75715597f001abe212b8d43e2",
        "train": "da58b17854a79ce6d3a2e50617b2b846a39d506064d080ee5c51efe557013b2b",
    },
    "bitcoin": {
        "eval": "ae1dd6c4cb0b9474b5130045b6819e1bd4bfb28623ce7999537dc90502009206",
        "test": "dd5e2162d167b71ba495c9eaa92f4c09166810c2bf8289e69ff047f5fcbc5f80",
        "train": "41c2499b0977cc8fee545e1bab880b3af20c8aa17d53fc0eeabed0c301fd4966",
    },
    "injected": {
        "eval": "1cb80d917d41ea797031db95da3a68dfeeb5a1b36153ae5c0426aede4b7f54ec",
        "test": "3dab548b8b8d0d5242101b7f6abda9bf339601b36a138392e27a83a73a9d51c7",
        "train": "72bb199d9c215d8db7c00c1fafda57cb777c73528f4f97007da564cdd59e4d93",
    },
}


@pytest.mark.parametrize("case", list(golden.CASES))
def test_earlier_columns_are_the_row_at_a_time_transforms(records: dict, case: str) -> None:
    """Cut down to the columns before the volatility features, today's shards are the
    bytes the row-at-a-time transform wrote: the new columns changed nothing else."""
    want = {f"{split}-00000-of-00001.csv": h for split, h in ROW_AT_A_TIME_SHA256[case].items()}
    got = {name: shard["legacy_sha256"] for name, shard in records[case]["shards"].items()}
    assert got == want
    stored = {name: shard["legacy_sha256"] for name, shard in GOLDEN[case]["shards"].items()}
    assert stored == want


def test_legacy_sha256_cuts_the_columns_by_name() -> None:
    header = ",".join(golden.LEGACY_COLUMNS)
    row = ",".join(str(i) for i in range(len(golden.LEGACY_COLUMNS)))
    text = f"{header}\n{row}\n"
    wider = (
        f"{header.replace(',target', ',extra,target')}\n"
        f"{row.rsplit(',', 1)[0]},x,{row.rsplit(',', 1)[1]}\n"
    )
    assert golden.legacy_sha256(wider) == golden.legacy_sha256(text)
    assert golden.legacy_sha256(text) == hashlib.sha256(text.encode()).hexdigest()
    assert golden.legacy_sha256(text.replace(",1,", ",9,", 1)) != golden.legacy_sha256(text)


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
