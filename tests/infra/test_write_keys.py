"""`make keys`: stack outputs in, key files with mode 600 out."""

from __future__ import annotations

import io
import json
import os
import stat
import sys

import pytest

from infra import write_keys

KEY = {
    "type": "service_account",
    "client_email": "a@b.iam.gserviceaccount.com",
    "private_key": "not-a-real-key",
}
OUTPUTS = {"project": "p", "service_account_keys": {"crypto-kfp-pipeline": json.dumps(KEY)}}


def test_writes_one_file_per_key_with_mode_600(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(OUTPUTS)))
    assert write_keys.main(["-", "--dir", str(tmp_path / "service_accounts")]) == 0
    path = tmp_path / "service_accounts" / "crypto-kfp-pipeline.json"
    assert json.loads(path.read_text()) == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "crypto-kfp-pipeline.json (mode 600)" in capsys.readouterr().out


def test_tightens_the_mode_of_an_existing_file(tmp_path):
    path = tmp_path / "crypto-kfp-pipeline.json"
    path.write_text("old")
    path.chmod(0o644)
    write_keys.write_keys(write_keys.extract_keys(OUTPUTS), tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == KEY


def test_clear_error_when_the_stack_has_no_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"project": "p"})))
    assert write_keys.main(["-", "--dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "No service-account keys in the stack outputs" in error
    assert "pulumi config set serviceAccountKeys true" in error
    assert list(tmp_path.iterdir()) == []


def test_hidden_secrets_and_non_key_values_are_refused():
    with pytest.raises(write_keys.KeysError, match="--show-secrets"):
        write_keys.extract_keys({"service_account_keys": "[secret]"})
    with pytest.raises(write_keys.KeysError, match="not a service-account key file"):
        write_keys.extract_keys({"service_account_keys": {"x": json.dumps({"type": "user"})}})
    with pytest.raises(write_keys.KeysError, match="unsafe name"):
        write_keys.extract_keys({"service_account_keys": {"../evil": json.dumps(KEY)}})


def test_reads_the_outputs_from_the_pulumi_cli(tmp_path, monkeypatch):
    # A stand-in `pulumi` on PATH that prints the outputs and records its arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "outputs.json").write_text(json.dumps(OUTPUTS))
    fake = bin_dir / "pulumi"
    fake.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\ncat "{tmp_path}/outputs.json"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert write_keys.main(["--dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "args").read_text().split() == [
        "stack",
        "output",
        "--json",
        "--show-secrets",
    ]
    assert json.loads((tmp_path / "out" / "crypto-kfp-pipeline.json").read_text()) == KEY
