"""The model server on a gs:// model repository, against gcp-storage-emulator over HTTP
(the real google-cloud-storage client), and the serve CLI under Vertex AI's AIP_*
variables in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from google.cloud import storage

from components.common.features import latest_features
from components.deploy.deploy import run as deploy

from .test_server import NAME, PREDICT, bitcoin_bars, call, running, wait_for  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


def upload(bucket: storage.Bucket, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            name = f"{prefix}/{path.relative_to(folder).as_posix()}"
            bucket.blob(name).upload_from_filename(str(path))


def test_serves_and_reloads_a_gcs_repository(bucket, model_dir, repo, bitcoin_bars):  # noqa: F811
    deploy(str(model_dir("v1")), model_repository=str(repo), model_name=NAME)
    upload(bucket, repo, "serving")
    row = {"instances": [latest_features(bitcoin_bars)]}
    with running(f"gs://{bucket.name}/serving") as url:
        status, payload, _ = call(url, f"/v1/models/{NAME}")
        assert status == 200 and payload["version"] == "1" and payload["versions"] == ["1"]
        assert payload["source"] == f"gs://{bucket.name}/serving/{NAME}"
        v1 = call(url, PREDICT, row)[1]["predictions"]
        # A deploy elsewhere: the new version's files, then CURRENT (as a publisher would).
        deploy(str(model_dir("v2")), model_repository=str(repo), model_name=NAME)
        upload(bucket, repo / NAME / "2", f"serving/{NAME}/2")
        bucket.blob(f"serving/{NAME}/CURRENT").upload_from_string("2\n")
        wait_for(lambda: call(url, f"/v1/models/{NAME}")[1]["version"] == "2", what="v2")
        assert call(url, PREDICT, row)[1]["predictions"] != v1
        # CURRENT naming a version that is not in the bucket: not ready, still alive.
        bucket.blob(f"serving/{NAME}/CURRENT").upload_from_string("9\n")
        wait_for(lambda: call(url, "/v2/health/ready")[0] == 503, what="not ready")
        assert "no saved_model.pb" in call(url, "/v2/health/ready")[1]["error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_cli_honours_the_vertex_variables(bucket, model_dir, repo, bitcoin_bars):  # noqa: F811
    """AIP_STORAGE_URI names one SavedModel folder in the bucket (what Vertex AI copies a
    Model Registry version's artifacts to), AIP_HTTP_PORT the port, and the health and
    predict routes are Vertex's."""
    deploy(str(model_dir("v1")), model_repository=str(repo), model_name=NAME)
    upload(bucket, repo / NAME / "1", "vertex/artifacts")
    port = _free_port()
    health = "/v1/endpoints/42/deployedModels/7"
    env = {
        **os.environ,
        "AIP_HTTP_PORT": str(port),
        "AIP_STORAGE_URI": f"gs://{bucket.name}/vertex/artifacts",
        "AIP_HEALTH_ROUTE": health,
        "AIP_PREDICT_ROUTE": f"{health}:predict",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "components.deploy", "serve", "--model-name", NAME],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 240
        while not line.startswith("serving "):
            assert process.poll() is None and time.monotonic() < deadline, line
            line = process.stdout.readline()
        # 0.0.0.0 when AIP_HTTP_PORT is set: the container's port, not only loopback.
        assert f"at http://0.0.0.0:{port}/v1/models/{NAME}" in line, line
        url = f"http://127.0.0.1:{port}"
        assert call(url, health)[:2] == (200, {"ready": True})
        body = {"instances": [latest_features(bitcoin_bars)]}
        status, payload, _ = call(url, f"{health}:predict", body)
        assert status == 200 and len(payload["predictions"]) == 1
        assert payload == call(url, PREDICT, body)[1]
        assert call(url, f"/v1/models/{NAME}")[1]["version"] == "1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
