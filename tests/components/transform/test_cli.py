"""``python -m components.transform`` as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from components.transform.__main__ import main
from tests.components.transform.synthetic import MONDAY, line, series, walk, write_csv
from tests.conftest import PROJECT_ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "components.transform", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_the_options() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for option in (
        "--output-dir",
        "--coins",
        "--split",
        "--max-rejected-fraction",
        "--column-mapping",
        "--runner",
        "--project",
        "--region",
        "--temp-location",
        "--staging-location",
        "--service-account-email",
        "--sdk-container-image",
        "--max-num-workers",
        "--subnetwork",
        "--public-ips",
        "--job-name",
        "--label",
    ):
        assert option in done.stdout, option


def test_too_many_rejections_exit_non_zero_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)) + [line("x", MONDAY, -5.0)] * 4)
    done = run_cli(str(src), "--output-dir", str(tmp_path / "out"), "--coins", "x")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error: 4 of 44 input rows rejected (9.09%)" in done.stderr
    assert "non_positive_price (4)" in done.stderr
    assert (tmp_path / "out" / "rejected.csv").is_file()


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)))
    # exit 1: the step ran and its input is unusable; exit 2: the arguments are.
    cases = {
        ("/no/such/file.csv",): (1, "input not found: /no/such/file.csv"),
        (str(src), "--column-mapping", "{oops"): (2, "column mapping is not valid JSON"),
        (str(src), "--split", "0.5,0.5"): (2, "three fractions"),
        (str(src), "--runner", "dataflow", "--label", "novalue"): (2, "--label must be KEY=VALUE"),
        (str(src), "--runner", "dataflow", "--project", "p"): (2, "gs:// only"),
    }
    for args, (status, message) in cases.items():
        assert main([*args, "--output-dir", str(tmp_path / "out"), "-q"]) == status, args
        err = capsys.readouterr().err
        assert err.startswith("transform: error: ") and message in err, (args, err)


def test_prints_per_coin_counts(bitcoin_csv: Path, tmp_path: Path, capsys) -> None:
    # The Bitcoin-only file has ISO dates (the full file has d/m/yyyy).
    assert main([str(bitcoin_csv), "--output-dir", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr().out
    # 1,762 examples sized 1,233 / 264 / 265, less the purged last train and last eval day.
    assert "bitcoin" in out and "1793   1232    263    265" in out
    assert "input rows 1793: accepted 1793, rejected 0" in out


def test_an_absurd_number_of_shards_is_refused_before_reading(tmp_path: Path, capsys) -> None:
    from components.transform import check_parameters

    assert check_parameters(num_shards=100_000) == {
        "num_shards": "num_shards must be >= 1 and <= 1000, got 100000"
    }
    assert check_parameters(num_shards=1_000) == {}
    out = tmp_path / "out"
    assert main([str(tmp_path / "none.csv"), "--output-dir", str(out), "--num-shards", "100000",
                 "-q"]) == 2  # fmt: skip
    assert "num_shards must be >= 1 and <= 1000" in capsys.readouterr().err
    assert not out.exists()


def test_an_output_dir_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)))
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    assert main([str(src), "--output-dir", str(blocker), "-q"]) == 2
    err = capsys.readouterr().err
    assert err == f"transform: error: --output-dir {blocker} exists and is not a directory\n"
    assert blocker.read_text() == "mine"
    assert main([str(src), "--output-dir", str(blocker / "sub"), "-q"]) == 2
    assert "--output-dir" in capsys.readouterr().err


def test_an_input_of_another_scheme_is_a_usage_error(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["ftp://example.com/prices.csv", "--output-dir", str(out), "-q"]) == 2
    assert capsys.readouterr().err == (
        "transform: error: INPUT has the unsupported scheme ftp://; use a local path or one "
        "of gs://, file://\n"
    )
    src = write_csv(tmp_path / "in.csv", series("x", walk(40)))
    assert main([str(src), "--output-dir", "s3://bucket/features", "-q"]) == 2
    assert "--output-dir has the unsupported scheme s3://" in capsys.readouterr().err
    assert main(["https://example.com/prices.csv", "--output-dir", str(out), "-q"]) == 2
    assert "INPUT has the unsupported scheme https://" in capsys.readouterr().err
    assert not out.exists()
