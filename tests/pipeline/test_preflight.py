"""``run-local`` and ``submit`` check every parameter before the first step, report every
problem at once naming its parameter, and exit 2 quickly without a traceback."""

import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.parameters import PARAMETER_TYPES, check_arguments

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    return proc, time.perf_counter() - started


def test_the_light_parameter_table_is_the_compiled_pipelines():
    from pipeline.crypto_pipeline import pipeline_inputs

    assert [(n, t) for n, t, _ in pipeline_inputs()] == list(PARAMETER_TYPES.items())


def test_five_bad_parameters_are_listed_at_once_and_nothing_runs(tmp_path, crypto_csv):
    proc, seconds = _cli(
        "run-local",
        "--root", str(tmp_path),
        "--source", str(crypto_csv),
        "--n-trials", "0",
        "--epochs", "many",
        "--seed", "-3",
        "--max-mae-ratio", "0",
        "--model-name", "../escape",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert seconds < 5
    assert "error: 5 problems with the parameters:" in proc.stderr
    for name in ("--n-trials", "--epochs", "--seed", "--max-mae-ratio", "--model-name"):
        assert f"  - {name}: " in proc.stderr, name
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "pipeline_root").exists()
    assert not (tmp_path / "crypto_pipeline.yaml").exists()


def test_unwritable_roots_and_repositories_are_refused_before_any_step(tmp_path, crypto_csv):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc, _ = _cli(
        "run-local",
        "--root", str(blocker),
        "--model-repository", str(blocker / "models"),
        "--source", str(crypto_csv),
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"--root: root {blocker} exists and is not a directory" in proc.stderr
    assert "--lake: lake" in proc.stderr and "is not a directory" in proc.stderr
    assert "--model-repository: model_repository" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_submit_checks_every_parameter_before_reading_the_stack():
    proc, seconds = _cli("submit", "--dry-run", "--n-trials", "x", "--tune-max-epochs", "0")
    assert proc.returncode == 2
    assert "--n-trials: must be an integer, got 'x'" in proc.stderr
    assert "--tune-max-epochs: max_epochs must be >= 1, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr and seconds < 5


def test_step_checks_name_the_pipeline_parameter():
    problems = check_arguments(
        {"split": "0.5,0.5", "coins": " , ", "column_mapping": '{"close": "x", "open": "X"}',
         "tune_timeout_s": 0, "deploy_target": "moon"}
    )  # fmt: skip
    assert [p.split(":")[0] for p in problems] == [
        "--column-mapping", "--coins", "--split", "--tune-timeout-s", "--deploy-target"
    ]  # fmt: skip
    assert check_arguments({"n_trials": 2, "seed": 7, "model_name": "btc", "split": ""}) == [
        "--split: split needs three fractions (train, eval, test); got ''"
    ]


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"slug,date,open,high,low,close,volume\n" + b"x,2020-01-01,1,1,1,1,1\n" * 2000
    ranges: list = []

    def do_HEAD(self):  # like a signed URL: HEAD is not allowed
        self.send_response(403)
        self.end_headers()

    def do_GET(self):
        if self.path != "/data.csv":
            self.send_response(404)
            self.end_headers()
            return
        _Handler.ranges.append(self.headers.get("Range"))
        first, last = self.headers["Range"].removeprefix("bytes=").split("-")
        part = self.body[int(first) : int(last) + 1]
        self.send_response(206)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_source_that_refuses_head_but_serves_get_passes(server):
    from pipeline.local import check_source_reachable, source_problem

    _Handler.ranges.clear()
    check_source_reachable(f"{server}/data.csv")
    assert _Handler.ranges == ["bytes=0-1023"]  # a small range, not the whole file
    assert source_problem(f"{server}/missing.csv") == (
        f"--source: source {server}/missing.csv answered HTTP 404"
    )


def test_the_deploy_targets_settings_are_checked_with_their_pipeline_names():
    from pipeline.parameters import check_arguments

    problems = check_arguments(
        {
            "deploy_target": "gke",
            "model_repository": "gs://models/repository",
            "serving_namespace": "Serving",
            "serving_min_replicas": 3,
            "serving_max_replicas": 2,
            "vertex_project": "",  # not vertex: not required
        }
    )
    assert problems == [
        "--serving-max-replicas: serving_max_replicas (2) must be at least "
        "serving_min_replicas (3)",
        "--serving-namespace: serving_namespace must be a Kubernetes name (lower-case letters, "
        "digits, '-'), got 'Serving'",
    ]
    vertex = check_arguments(
        {"deploy_target": "vertex", "model_repository": "/tmp/x", "vertex_region": ""}
    )
    assert vertex[0].startswith("--model-repository: the vertex target publishes to the models")
    assert "--vertex-region: vertex_region is required for deploy target 'vertex'" in vertex


def test_dataflow_labels_that_are_not_a_json_object_are_refused_at_once(
    tmp_path, crypto_csv, capsys
):
    import json

    from pipeline.__main__ import main
    from tests.pipeline.test_profiles import stack_outputs

    refused = "--dataflow-labels: dataflow_labels must be a JSON object"
    assert check_arguments({"dataflow_labels": "notjson"}) == [
        f"""{refused} {{"key": "value"}}, got 'notjson'"""
    ]
    assert check_arguments({"dataflow_labels": '["team"]'})[0].startswith(refused)
    assert check_arguments({"dataflow_labels": '{"Team": "ml"}'}) == [
        "--dataflow-labels: dataflow_labels: Team=ml not valid GCP labels (lower-case "
        "letters, digits, _ and -; keys start with a letter; at most 63 characters)"
    ]
    assert check_arguments({"dataflow_labels": '{"team": "ml"}'}) == []
    assert check_arguments({"dataflow_labels": ""}) == []

    run_local = ["run-local", "--root", str(tmp_path), "--source", str(crypto_csv)]
    assert main([*run_local, "--dataflow-labels", "notjson"]) == 2
    assert refused in capsys.readouterr().err
    assert not (tmp_path / "pipeline_root").exists()

    outputs = tmp_path / "stack-outputs.json"
    outputs.write_text(json.dumps(stack_outputs()))
    yaml = tmp_path / "p.yaml"
    submit = ["submit", "--dry-run", "--stack-outputs", str(outputs), "--output", str(yaml)]
    assert main([*submit, "--dataflow-labels", "notjson"]) == 2
    assert refused in capsys.readouterr().err
    assert not yaml.exists()


def test_run_local_refuses_fewer_most_replicas_than_fewest_as_submit_does(
    tmp_path, crypto_csv, capsys
):
    from pipeline.__main__ import main

    refused = (
        "--serving-max-replicas: serving_max_replicas (1) must be at least serving_min_replicas (5)"
    )
    replicas = {"serving_min_replicas": 5, "serving_max_replicas": 1}
    for target in ({}, {"deploy_target": "local"}, {"deploy_target": "gke"}):
        assert check_arguments(replicas | target) == [refused], target
    assert check_arguments({"serving_min_replicas": 1, "serving_max_replicas": 5}) == []
    argv = ["run-local", "--root", str(tmp_path), "--source", str(crypto_csv),
            "--serving-min-replicas", "5", "--serving-max-replicas", "1"]  # fmt: skip
    assert main(argv) == 2
    assert refused in capsys.readouterr().err
    assert not (tmp_path / "pipeline_root").exists()
