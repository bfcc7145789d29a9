"""``python -m components.ingest`` and ``local_test.sh``, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from google.cloud import storage

from tests.conftest import FULL_CSV_SHA256, PROJECT_ROOT


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "components.ingest", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_help_names_every_option() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for option in ("--source", "--lake", "--sha256", "--column-mapping", "--output", "--json"):
        assert option in done.stdout
    assert "raw.githubusercontent.com" in done.stdout  # the default source is shown


def test_bad_input_exits_1_with_the_message_only(tmp_path: Path) -> None:
    source = tmp_path / "page.csv"
    source.write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    done = run_cli("--source", str(source), "--lake", str(tmp_path / "lake"))
    assert done.returncode == 1
    assert done.stderr.startswith("ingest: error: ")
    assert "got HTML, not CSV" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "lake").exists()

    done = run_cli("--source", str(tmp_path / "absent.csv"), "--lake", str(tmp_path / "lake"))
    assert done.returncode == 1 and "source not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_json_summary_into_a_gcs_lake(
    gcs_emulator: str, bucket: storage.Bucket, sample_csv: Path
) -> None:
    # No client passed: the CLI builds its own, which STORAGE_EMULATOR_HOST redirects.
    args = ("--source", str(sample_csv), "--lake", f"gs://{bucket.name}/lake", "--json")
    first = json.loads(run_cli(*args, env={"STORAGE_EMULATOR_HOST": gcs_emulator}).stdout)
    second = json.loads(run_cli(*args, env={"STORAGE_EMULATOR_HOST": gcs_emulator}).stdout)
    assert first["lake_uri"].startswith(f"gs://{bucket.name}/lake/raw/sha256=")
    assert (first["rows"], first["stored_new"], second["stored_new"]) == (40, True, False)
    assert [b.name for b in bucket.list_blobs()] == [first["lake_uri"].split("/", 3)[3]]


def test_local_test_script(data_dir: Path) -> None:
    script = PROJECT_ROOT / "components" / "ingest" / "local_test.sh"
    assert os.access(script, os.X_OK)
    done = subprocess.run(
        [str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CRYPTO_DATA_DIR": str(data_dir), "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr
    assert "stored new object: " in done.stdout
    assert "already in the lake, stored nothing new" in done.stdout
    assert FULL_CSV_SHA256 in done.stdout
    assert "local_test: OK" in done.stdout
