"""The deploy CLI (in-process) and local_test.sh (as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from components.deploy.__main__ import main

SCRIPT = Path(__file__).resolve().parents[3] / "components" / "deploy" / "local_test.sh"


@pytest.mark.parametrize(
    "argv", [[], ["publish"], ["rollback"], ["status"], ["serve"], ["forecast"]]
)
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m components.deploy" in out
    if argv == ["forecast"]:
        assert "--url" in out and "--csv" in out and "--model-name" in out and "--json" in out
        assert "90% " in out and "90%%" not in out
    elif argv:
        assert "--model-repository" in out and "--model-name" in out


def test_publish_status_rollback(model_dir, repo, capsys):
    common = ["--model-repository", str(repo), "--model-name", "btc"]
    assert (
        main(
            [
                "publish",
                str(model_dir("v1")),
                *common,
                "--metrics",
                '{"mae_ratio": 0.9}',
                "--source-run",
                "cli",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["record"]["metrics"] == {"mae_ratio": 0.9}
    assert main(["publish", str(model_dir("v2")), *common]) == 0
    capsys.readouterr()
    assert main(["rollback", *common]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1"
    assert main(["status", *common]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {"name": "btc", "current_version": "1", "versions": ["1", "2"]}


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        (["--target", "gke"], 2, "the gke target publishes to the models bucket: model_repo"),
        (["--target", "vertex"], 2, "--target vertex needs --project, --region, --image"),
        (["--metrics", "[1]"], 2, "--metrics must be a JSON object"),
        (["--metrics", "{oops"], 2, "--metrics is not valid JSON: Expecting property name"),
    ],
)
def test_publish_errors_exit_with_a_message(model_dir, repo, capsys, extra, status, message):
    """1: the step ran and failed; 2: an unusable argument."""
    argv = [
        "publish",
        str(model_dir("v1")),
        "--model-repository",
        str(repo),
        "--model-name",
        "btc",
        *extra,
    ]
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.startswith("deploy: error: ") and message in err


def test_serve_refuses_an_empty_repository(repo, capsys):
    assert (
        main(["serve", "--model-repository", str(repo), "--model-name", "btc", "--port", "0"]) == 1
    )
    assert "has no CURRENT version" in capsys.readouterr().err


def test_local_test_sh_usage():
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "usage: local_test.sh MODEL_DIR" in result.stderr


@pytest.mark.slow
def test_local_test_sh_publishes_serves_and_forecasts(model_dir, data_dir):
    env = {**os.environ, "CRYPTO_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [str(SCRIPT), str(model_dir("v1"))], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "local_test: OK (2018-03-25 close 8495.78 -> 2018-03-26 forecast" in result.stdout


@pytest.mark.parametrize("command", ["serve", "status", "rollback", "publish"])
def test_a_model_name_that_is_a_path_is_a_usage_error(command, repo, tmp_path, capsys):
    argv = [command, *([str(tmp_path)] if command == "publish" else [])]
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--model-repository", str(repo), "--model-name", "../../../tmp"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --model-name: invalid model name '../../../tmp'" in err
    assert "Traceback" not in err
    assert not repo.exists()


def test_train_and_deploy_share_the_model_name_rule():
    from components import deploy, train
    from components.deploy.repository import RepositoryError, validate_model_name

    for name in ("../escape", "a/b", "..", "x" * 64, "-lead", "a..b"):
        problem = train.check_parameters(model_name=name)["model_name"]
        assert deploy.check_parameters(model_name=name)["model_name"] == problem
        with pytest.raises(RepositoryError, match="invalid model name"):
            validate_model_name(name)
    for name in ("btc-forecast", "btc_1.2", "x" * 63):
        assert train.check_parameters(model_name=name) == {}
        assert validate_model_name(name) == name
