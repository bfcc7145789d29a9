"""Arguments ingest cannot use are refused before anything is fetched or stored: exit 2,
one line naming the option (issue 22)."""

from __future__ import annotations

from pathlib import Path

from components.ingest import check_parameters
from components.ingest.__main__ import main


def test_an_infinite_minimum_rate_is_refused(sample_csv: Path, tmp_path: Path, capsys) -> None:
    assert check_parameters(min_bytes_per_s=float("inf")) == {
        "min_bytes_per_s": "min_bytes_per_s must be a finite number, got inf"
    }
    assert check_parameters(min_bytes_per_s=0.0) == {}
    lake = tmp_path / "lake"
    rc = main(["--source", str(sample_csv), "--lake", str(lake), "--min-bytes-per-s", "inf"])
    assert rc == 2
    assert capsys.readouterr().err.startswith(
        "ingest: error: min_bytes_per_s must be a finite number"
    )
    assert not lake.exists()


def test_an_output_that_is_a_directory_is_refused_before_the_lake_is_written(
    sample_csv: Path, tmp_path: Path, capsys
) -> None:
    lake, folder = tmp_path / "lake", tmp_path / "folder"
    folder.mkdir()
    rc = main(["--source", str(sample_csv), "--lake", str(lake), "--output", str(folder)])
    assert rc == 2
    assert capsys.readouterr().err == (
        f"ingest: error: --output {folder} is a directory; give the path of a file\n"
    )
    assert not lake.exists()
    assert check_parameters(raw_path=str(folder)) == {
        "raw_path": f"raw_path {folder} is a directory; give the path of a file"
    }
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    problem = check_parameters(raw_path=blocker / "copy.csv")["raw_path"]
    assert (
        problem
        == f"raw_path {blocker / 'copy.csv'}: its folder {blocker} exists and is not a directory"
    )
    assert check_parameters(raw_path=str(tmp_path / "new" / "copy.csv")) == {}


def test_a_source_of_another_scheme_is_refused_not_read_as_a_local_path(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    import pytest

    from components.common.uris import FetchError, is_local, iter_chunks
    from pipeline.parameters import check_arguments

    supported = "use a local path or one of gs://, https://, http://, file://"
    for source in ("ftp://example.com/prices.csv", "s3://bucket/prices.csv", "S3://b/p.csv"):
        scheme = source.split("://")[0] + "://"
        problem = f"source has the unsupported scheme {scheme}; {supported}"
        assert check_parameters(source=source) == {"source": problem}
        assert check_arguments({"source": source}) == [f"--source: {problem}"]
        assert not is_local(source)
        with pytest.raises(FetchError, match=f"unsupported scheme {scheme}"):
            next(iter_chunks(source))
    assert is_local("file:///data/prices.csv") and is_local("data/prices.csv")
    assert check_parameters(lake="s3://bucket/lake")["lake"].startswith("the lake must be")

    monkeypatch.chdir(tmp_path)
    rc = main(["--source", "ftp://user:secret@example.com/p.csv", "--lake", "lake"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err == f"ingest: error: source has the unsupported scheme ftp://; {supported}\n"
    assert list(tmp_path.iterdir()) == []
