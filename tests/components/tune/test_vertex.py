"""tune backend="vertex": the HyperparameterTuningJob request the real google-cloud-aiplatform
client sends (to a loopback stand-in of the Vertex AI REST API), field by field; the job's
trials turned into best_params with the Optuna backend's schema and selection rule; and the
trial entry point on the shared data, writing the hypertune metric file.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import google.auth
import numpy as np
import pytest
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from components import train
from components.common.contracts import HPARAM_NAMES
from components.common.termination import Terminated
from components.train.train import read_params
from components.tune import run as tune_run
from components.tune import trial as trial_cli
from components.tune.tune import select_one_se, trials_markdown
from components.tune.vertex import TuningJobError

PROJECT = "crypto-dev-123"
REGION = "europe-west1"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/images/tune@sha256:" + "cd" * 32
VERTEX_SA = f"crypto-vertex@{PROJECT}.iam.gserviceaccount.com"
JOB = f"projects/{PROJECT}/locations/{REGION}/hyperparameterTuningJobs/4242"
BITCOIN = Path(os.environ.get("CRYPTO_DATA_DIR", "")) / "crypto-markets-bitcoin.csv"
#: Three trials: 1 and 2 succeed (2 is within one SE of 1 with a larger l2), 3 infeasible.
TRIAL_PARAMS = {
    "1": {"learning_rate": 0.001, "num_layers": 2.0, "first_layer_units": 32.0,
          "layer_scale": 0.5, "dropout": 0.1, "batch_size": 64.0, "l2": 0.002},
    "2": {"learning_rate": 0.002, "num_layers": 1.0, "first_layer_units": 16.0,
          "layer_scale": 0.75, "dropout": 0.2, "batch_size": 128.0, "l2": 0.05},
    "3": {"learning_rate": 0.009, "num_layers": 3.0, "first_layer_units": 128.0,
          "layer_scale": 1.0, "dropout": 0.0, "batch_size": 32.0, "l2": 0.001},
}  # fmt: skip
#: Each succeeded trial's eval pinball loss per row, as the trial writes it (round numbers:
#: trial 2's excess over trial 1 is exactly one standard error).
ERRORS = {"1": [10.0, 20.0, 30.0, 40.0], "2": [11.0, 19.0, 31.0, 41.0]}
#: The run's quantile levels (not the default: they must reach every trial).
LEVELS = "0.1,0.5,0.9"


class VertexStandIn:
    """Answers create, get and cancel of hyperparameterTuningJobs. The job succeeds at
    once; or, with ``hold``, runs until cancelled, and with ``sigterm_on_get=n`` this
    process gets SIGTERM (a node reclaimed) as the stand-in answers the n-th status read."""

    def __init__(self, *, hold: bool = False, sigterm_on_get: int | None = None) -> None:
        self.requests: list[tuple[str, str, dict | None]] = []
        self.state = "JOB_STATE_RUNNING" if hold else "JOB_STATE_SUCCEEDED"
        self.sigterm_on_get = sigterm_on_get
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                path = self.path.split("?")[0]
                outer.requests.append(("POST", path, body))
                if path.endswith(":cancel"):
                    outer.state = "JOB_STATE_CANCELLED"
                    return self._reply({})
                self._reply({**body, "name": JOB, "state": "JOB_STATE_PENDING"})

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(("GET", self.path.split("?")[0], None))
                created = outer.requests[0][2]
                answer = {**created, "name": JOB, "state": outer.state}
                if outer.state == "JOB_STATE_SUCCEEDED":
                    answer["trials"] = outer.trials()
                self._reply(answer)
                reads = sum(1 for m, _, _ in outer.requests if m == "GET")
                if reads == outer.sigterm_on_get:
                    os.kill(os.getpid(), signal.SIGTERM)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def trials() -> list[dict]:
        out = []
        for trial_id, params in TRIAL_PARAMS.items():
            trial = {
                "id": trial_id,
                "state": "SUCCEEDED" if trial_id in ERRORS else "INFEASIBLE",
                "parameters": [{"parameterId": k, "value": v} for k, v in params.items()],
                "startTime": "2026-12-01T00:00:00Z",
                "endTime": "2026-12-01T00:02:00Z",
            }
            if trial_id in ERRORS:
                trial["finalMeasurement"] = {
                    "stepCount": "7",
                    "metrics": [
                        {"metricId": "eval_pinball", "value": float(np.mean(ERRORS[trial_id]))}
                    ],
                }
            out.append(trial)
        return out


@pytest.fixture
def gcs(monkeypatch):
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    monkeypatch.setenv(
        "STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server._api._httpd.server_address[1]}"
    )
    # The clients ask google.auth for credentials; there are none here (no Google).
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), PROJECT))
    yield storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    server.stop()


def _tune_on_vertex(stand_in, gcs, monkeypatch, tmp_path):
    """tune.run(backend="vertex") against ``stand_in``: its result and the bucket; the
    trials' error files are in the emulator where the trials would have written them."""
    import components.tune.vertex as vertex

    bucket = gcs.create_bucket(f"artifacts-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(
        vertex.VertexSettings, "__init__", _with_endpoint(vertex.VertexSettings.__init__, stand_in)
    )
    name = "crypto-tune-20261201-000000"
    monkeypatch.setattr(vertex, "dt", _FixedClock)
    for trial_id, errors in ERRORS.items():
        bucket.blob(f"vertex-staging/{name}/errors/{trial_id}.json").upload_from_string(
            json.dumps(
                {
                    "trial": trial_id,
                    "value": float(np.mean(errors)),
                    "baseline": 50.0,
                    "epochs": 7,
                    "errors": errors,
                }
            )  # fmt: skip
        )
    result = tune_run(
        f"gs://{bucket.name}/run/features",
        f"gs://{bucket.name}/run/stats.json",
        best_params_path=tmp_path / "best_params.json",
        trials_table_path=tmp_path / "trials.md",
        backend="vertex",
        n_trials=3,
        parallel_trials=2,
        timeout_s=900,
        max_epochs=30,
        seed=7,
        vertex_project=PROJECT,
        vertex_region=REGION,
        vertex_service_account=VERTEX_SA,
        vertex_staging_bucket=f"gs://{bucket.name}/vertex-staging",
        vertex_image=IMAGE,
        vertex_machine_type="n1-standard-8",
        quantile_levels=LEVELS,
    )
    return result, bucket.name


@pytest.fixture
def vertex_job(gcs, monkeypatch, tmp_path):
    """tune.run(backend="vertex") against the stand-in, the job succeeding at once."""
    stand_in = VertexStandIn()
    try:
        result, bucket = _tune_on_vertex(stand_in, gcs, monkeypatch, tmp_path)
    finally:
        stand_in.server.shutdown()
    return result, stand_in, bucket, tmp_path


class _FixedClock:
    class datetime:
        @staticmethod
        def now(tz=None):
            import datetime

            return datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)

    UTC = None


def _with_endpoint(init, stand_in):
    def patched(self, *args, **kwargs):
        kwargs.update(api_endpoint=stand_in.endpoint, api_transport="rest")
        init(self, *args, **kwargs)

    return patched


def test_tuning_job_request_field_by_field(vertex_job):
    _, stand_in, bucket, _ = vertex_job
    method, path, job = stand_in.requests[0]
    assert (method, path) == (
        "POST",
        f"/v1/projects/{PROJECT}/locations/{REGION}/hyperparameterTuningJobs",
    )
    assert job["displayName"] == "crypto-tune-20261201-000000"
    assert job["maxTrialCount"] == 3
    assert job["parallelTrialCount"] == 2
    study = job["studySpec"]
    assert study["metrics"] == [{"metricId": "eval_pinball", "goal": 2}]  # 2 = MINIMIZE
    specs = {p["parameterId"]: p for p in study["parameters"]}
    assert list(specs) == list(HPARAM_NAMES)
    log, linear = 2, 1  # ScaleType enum values
    assert specs["learning_rate"] == {
        "parameterId": "learning_rate",
        "scaleType": log,
        "doubleValueSpec": {"minValue": 1e-4, "maxValue": 1e-2},
    }
    assert specs["num_layers"] == {
        "parameterId": "num_layers",
        "scaleType": linear,
        "integerValueSpec": {"minValue": "1", "maxValue": "3"},
    }
    assert specs["first_layer_units"]["integerValueSpec"] == {"minValue": "8", "maxValue": "128"}
    assert specs["first_layer_units"]["scaleType"] == log
    assert specs["layer_scale"]["doubleValueSpec"] == {"minValue": 0.25, "maxValue": 1.0}
    # min 0.0 is proto3's default value, which JSON leaves out.
    assert specs["dropout"]["doubleValueSpec"] == {"maxValue": 0.5}
    assert specs["batch_size"]["discreteValueSpec"] == {"values": [32.0, 64.0, 128.0, 256.0]}
    assert specs["l2"] == {"parameterId": "l2", "scaleType": log,
                           "doubleValueSpec": {"minValue": 1e-3, "maxValue": 1e-1}}  # fmt: skip
    trial_spec = job["trialJobSpec"]
    assert trial_spec["serviceAccount"] == VERTEX_SA
    base = f"gs://{bucket}/vertex-staging/crypto-tune-20261201-000000"
    assert trial_spec["baseOutputDirectory"] == {"outputUriPrefix": base}
    assert trial_spec["scheduling"]["timeout"] == "900s"
    (pool,) = trial_spec["workerPoolSpecs"]
    assert pool["machineSpec"] == {"machineType": "n1-standard-8"}
    assert pool["replicaCount"] == "1"
    container = pool["containerSpec"]
    assert container["imageUri"] == IMAGE
    assert container["command"] == ["python", "-m", "components.tune.trial"]
    assert container["args"] == [
        f"--features=/gcs/{bucket}/run/features",
        f"--stats=/gcs/{bucket}/run/stats.json",
        f"--errors-dir=/gcs/{bucket}/vertex-staging/crypto-tune-20261201-000000/errors",
        "--max-epochs=30",
        "--seed=7",
        "--patience=5",
        f"--quantile-levels={LEVELS}",
    ]
    assert job["labels"] == {"app": "crypto-kfp", "step": "tune"}
    assert ("GET", f"/v1/{JOB}", None) in stand_in.requests  # it waited for the job


def test_vertex_result_becomes_best_params_with_the_optuna_schema(vertex_job, tune_data):
    result, _, _, tmp_path = vertex_job
    # The one-SE rule: trial 2 is within one SE of trial 1 (the lowest) and has the larger l2.
    errors = {int(k): np.asarray(v) for k, v in ERRORS.items()}
    assert select_one_se(errors, {1: 0.002, 2: 0.05}) == 2
    assert (result.best_trial, result.lowest_trial, result.selection) == (2, 1, "one_se")
    assert (result.trials_run, result.trials_failed, result.backend) == (3, 1, "vertex")
    best = json.loads((tmp_path / "best_params.json").read_text())
    assert best == {"learning_rate": 0.002, "num_layers": 1, "first_layer_units": 16,
                    "layer_scale": 0.75, "dropout": 0.2, "batch_size": 128, "l2": 0.05}  # fmt: skip
    assert list(best) == list(HPARAM_NAMES)
    assert {k: type(v) for k, v in best.items()} == {
        k: type(v) for k, v in train.DEFAULT_HPARAMS.items()
    }
    assert read_params(tmp_path / "best_params.json") == best  # what train.run reads
    # The trials table has the Optuna backend's shape, row by row.
    assert set(result.trials[0]) == {"number", "state", "eval_pinball", "eval_pinball_ratio",
                                     "epochs", "seconds", "params", "within_one_se"}  # fmt: skip
    # The trials' metric and the reference their files carry, as the Optuna backend has them.
    assert result.trials[0]["eval_pinball"] == 25.0
    assert result.trials[0]["eval_pinball_ratio"] == pytest.approx(25.0 / 50.0)
    assert result.baseline_eval_pinball == 50.0 and result.quantile_levels == (0.1, 0.5, 0.9)
    assert [t["state"] for t in result.trials] == ["complete", "complete", "fail"]
    assert result.trials[0]["seconds"] == 120.0
    assert "| 2 (selected) | complete |" in trials_markdown(result)
    # An Optuna result on the same data has the same best_params schema.
    features, stats = tune_data
    optuna = tune_run(features, stats, n_trials=1, max_epochs=1, timeout_s=60)
    assert list(optuna.best_params) == list(best)
    assert {k: type(v) for k, v in optuna.best_params.items()} == {
        k: type(v) for k, v in best.items()
    }


class _Unguarded(Exception):
    """SIGTERM reached the test's own handler: nothing guarded the wait."""


def test_sigterm_during_the_wait_cancels_the_tuning_job(gcs, monkeypatch, tmp_path):
    """The pod gets SIGTERM (spot node reclaimed, KFP retry) while the step waits for the
    job: the real client's cancel request reaches the stand-in before the step fails."""
    stand_in = VertexStandIn(hold=True, sigterm_on_get=2)

    def unguarded(signum, frame):
        raise _Unguarded("SIGTERM was not handled by the step")

    previous = signal.signal(signal.SIGTERM, unguarded)  # never the default: it kills pytest
    try:
        with pytest.raises(TuningJobError) as failure:
            _tune_on_vertex(stand_in, gcs, monkeypatch, tmp_path)
        assert signal.getsignal(signal.SIGTERM) is unguarded  # the step's handler is gone
    finally:
        signal.signal(signal.SIGTERM, previous)
        stand_in.server.shutdown()
    assert isinstance(failure.value.__cause__, Terminated)
    message = str(failure.value)
    assert "Vertex AI tuning job crypto-tune-20261201-000000" in message
    assert "terminated (received SIGTERM" in message
    assert "cancellation was requested" in message
    jobs = f"/v1/projects/{PROJECT}/locations/{REGION}/hyperparameterTuningJobs"
    assert [(m, p) for m, p, _ in stand_in.requests] == [
        ("POST", jobs),  # created
        ("GET", f"/v1/{JOB}"),  # running
        ("GET", f"/v1/{JOB}"),  # running: SIGTERM
        ("GET", f"/v1/{JOB}"),  # still running, so:
        ("POST", f"/v1/{JOB}:cancel"),
    ]
    assert stand_in.state == "JOB_STATE_CANCELLED"
    assert not (tmp_path / "best_params.json").exists()


@pytest.mark.slow
def test_trial_entry_point_trains_on_the_shared_data_and_writes_the_metric(tmp_path, monkeypatch):
    from components.transform import run as transform

    if not BITCOIN.is_file():
        pytest.fail(f"shared data missing: {BITCOIN} (set CRYPTO_DATA_DIR)")
    transform(
        str(BITCOIN),
        features_path=str(tmp_path / "features"),
        stats_path=str(tmp_path / "stats.json"),
        rejected_path=str(tmp_path / "rejected.csv"),
    )
    metric_file = tmp_path / "hypertune" / "output.metrics"
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(metric_file))
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "5")
    # As Vertex passes them: every value a double.
    params = {
        "learning_rate": "0.003",
        "num_layers": "2.0",
        "first_layer_units": "16.0",
        "layer_scale": "0.5",
        "dropout": "0.1",
        "batch_size": "128.0",
        "l2": "0.01",
    }
    argv = [
        f"--features={tmp_path / 'features'}",
        f"--stats={tmp_path / 'stats.json'}",
        f"--errors-dir={tmp_path / 'errors'}",
        "--max-epochs=2",
        "--seed=3",
        "--patience=2",
        "--quantile-levels=0.05,0.25,0.5,0.75,0.95",
        *(f"--{k}={v}" for k, v in params.items()),
    ]
    assert trial_cli.main(argv) == 0
    metric = json.loads(metric_file.read_text().strip().splitlines()[-1])
    assert float(metric["eval_pinball"]) > 0 and str(metric["global_step"]) == "2"
    detail = json.loads((tmp_path / "errors" / "5.json").read_text())
    assert float(metric["eval_pinball"]) == pytest.approx(detail["value"])
    assert detail["value"] == pytest.approx(np.mean(detail["errors"]))
    assert len(detail["errors"]) == 263  # the eval rows of the shared file
    assert detail["baseline"] > 0 and detail["epochs"] == 2
