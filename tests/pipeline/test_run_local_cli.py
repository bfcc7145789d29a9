"""``python -m pipeline run-local``: fail fast on an unreachable source, name the failing step."""

import socket
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _run_cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run-local", "--root", str(root), *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_fails_before_any_step(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/crypto-markets.csv"
    proc = _run_cli("--source", url, root=tmp_path)
    assert proc.returncode == 2
    assert "cannot reach" in proc.stderr and "SOURCE=" in proc.stderr
    assert not (tmp_path / "pipeline_root").exists()


def test_missing_local_file_fails_before_any_step(tmp_path):
    proc = _run_cli("--source", str(tmp_path / "nope.csv"), root=tmp_path)
    assert proc.returncode == 2
    assert "source file not found" in proc.stderr


def test_failing_step_is_named_with_its_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,Price\n2018-01-01,1,2\n")
    proc = _run_cli("--source", str(bad), root=tmp_path / "run")
    assert proc.returncode == 1, proc.stdout[-3000:]
    summary = proc.stdout[proc.stdout.index("Run summary") :]
    assert "FAILED at step 'ingest'" in summary
    assert "missing columns" in summary
    assert "transform  NOT RUN" in summary


def test_backend_that_cannot_run_locally_is_refused_before_any_step(tmp_path, crypto_csv):
    proc = _run_cli("--source", str(crypto_csv), "--deploy-target", "vertex", root=tmp_path)
    assert proc.returncode == 2
    assert "deploy_target='vertex' cannot run locally" in proc.stderr
    assert not (tmp_path / "pipeline_root").exists()


def test_file_uri_source_passes_the_preflight(crypto_csv):
    from pipeline.local import SourceUnavailableError, check_source_reachable

    check_source_reachable(crypto_csv.as_uri())  # no exception
    try:
        check_source_reachable("file:///no/such/file.csv")
    except SourceUnavailableError as exc:
        assert "source file not found: /no/such/file.csv" in str(exc)
    else:
        raise AssertionError("a missing file:// source passed the preflight")


def _records(train_status: str):
    from components.images import STEPS
    from pipeline.local import StepRecord

    records = {step: StepRecord(step, "SUCCEEDED", 1.0) for step in STEPS}
    records["train"].status = train_status
    records["deploy"] = StepRecord("deploy")
    return records


def test_deploy_not_run_is_skipped_only_when_the_gate_said_no():
    from pipeline.local import classify_deploy

    shut = _records("SUCCEEDED")
    classify_deploy(shut, {"train": {"Output": False}})
    assert shut["deploy"].status == "SKIPPED"

    passed_but_missing = _records("SUCCEEDED")
    classify_deploy(passed_but_missing, {"train": {"Output": True}})
    assert passed_but_missing["deploy"].status == "FAILED"
    assert "gate output was True" in passed_but_missing["deploy"].output_tail[0]

    train_failed = _records("FAILED")
    classify_deploy(train_failed, {})
    assert train_failed["deploy"].status == "NOT RUN"
