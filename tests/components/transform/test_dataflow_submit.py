"""runner="dataflow": Beam's real DataflowRunner stages into the GCS emulator and submits
to a loopback stand-in of the Dataflow REST API (tests/components/transform/dataflow_standin.py),
which runs the submitted pipeline and reports its state.

The job request is asserted field by field; the outputs of the submitted pipeline are
compared with a local run on the same file (same results on both code paths).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from pathlib import Path

import google.auth
import pytest
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from components.common.contracts import SPLITS, shard_names
from components.transform import TransformError, run
from tests.components.transform.dataflow_standin import ENDPOINT, DataflowStandIn, job_state

pytestmark = pytest.mark.slow

PROJECT = "crypto-dev-123"
IMAGE = f"europe-west1-docker.pkg.dev/{PROJECT}/images/transform-worker@sha256:" + "ab" * 32
WORKER_SA = f"crypto-dataflow@{PROJECT}.iam.gserviceaccount.com"
SUBNETWORK = "regions/europe-west1/subnetworks/crypto-subnet"
LABELS = {"app": "crypto-kfp", "step": "transform"}
BITCOIN = Path(os.environ.get("CRYPTO_DATA_DIR", "")) / "crypto-markets-bitcoin.csv"


@pytest.fixture(scope="module")
def gcs():
    """The GCS emulator, a client of it, and anonymous credentials for Beam (no Google)."""
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    url = f"http://127.0.0.1:{server._api._httpd.server_address[1]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", url)
        # Beam asks google.auth for credentials first; here there are none to find.
        patch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), PROJECT))
        yield storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    server.stop()


@pytest.fixture
def buckets(gcs):
    names = {key: f"{key}-{uuid.uuid4().hex[:10]}" for key in ("data", "temp", "staging")}
    for name in names.values():
        gcs.create_bucket(name)
    if not BITCOIN.is_file():
        pytest.fail(f"shared data missing: {BITCOIN} (set CRYPTO_DATA_DIR)")
    gcs.bucket(names["data"]).blob("raw/bitcoin.csv").upload_from_filename(str(BITCOIN))
    return names


@pytest.fixture
def standin(gcs, monkeypatch):
    made = []

    def make(**kwargs) -> DataflowStandIn:
        service = DataflowStandIn(gcs, **kwargs)
        monkeypatch.setenv("http_proxy", service.proxy)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def _options(buckets) -> dict:
    return {
        "project": PROJECT,
        "region": "europe-west1",
        "temp_location": f"gs://{buckets['temp']}/tmp",
        "staging_location": f"gs://{buckets['staging']}/staging",
        "service_account_email": WORKER_SA,
        "sdk_container_image": IMAGE,
        "max_num_workers": 3,
        "machine_type": "e2-standard-2",
        "subnetwork": SUBNETWORK,
        "labels": LABELS,
        "job_name": "crypto-transform-test",
        "dataflow_endpoint": ENDPOINT,
    }


def _run_on_dataflow(buckets, **kwargs):
    data = f"gs://{buckets['data']}"
    return run(
        f"{data}/raw/bitcoin.csv",
        features_path=f"{data}/out/features",
        stats_path=f"{data}/out/stats.json",
        rejected_path=f"{data}/out/rejected.csv",
        runner="dataflow",
        pipeline_options=_options(buckets),
        **kwargs,
    )


def test_job_request_and_outputs_equal_to_the_local_runner(buckets, standin, gcs, tmp_path):
    service = standin()
    result = _run_on_dataflow(buckets)

    assert len(service.created) == 1
    job = service.created[0]
    assert job["name"] == "crypto-transform-test"
    assert job["type"] in (1, "JOB_TYPE_BATCH")
    assert job["labels"] == LABELS
    env = job["environment"]
    assert env["serviceAccountEmail"] == WORKER_SA
    assert env["tempStoragePrefix"].startswith(f"storage.googleapis.com/{buckets['temp']}/tmp/")
    (pool,) = env["workerPools"]
    assert pool["subnetwork"] == SUBNETWORK
    assert pool["ipConfiguration"] in (2, "WORKER_IP_PRIVATE"), "workers must have no public IP"
    assert pool["workerHarnessContainerImage"] == IMAGE
    assert [c["containerImage"] for c in pool["sdkHarnessContainerImages"]] == [IMAGE]
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 3
    assert pool["machineType"] == "e2-standard-2"
    options = env["sdkPipelineOptions"]["options"]
    assert options["sdk_location"] == "container"  # the image holds Beam and the project
    assert options["pipelineUrl"].startswith(f"gs://{buckets['staging']}/staging/")
    assert service.paths[0] == ("POST", f"/v1b3/projects/{PROJECT}/locations/europe-west1/jobs")

    # The same file through the local runner on local paths: identical outputs.
    local = run(
        str(BITCOIN),
        features_path=str(tmp_path / "features"),
        stats_path=str(tmp_path / "stats.json"),
        rejected_path=str(tmp_path / "rejected.csv"),
    )
    assert (result.input_rows, result.splits, result.coins) == (
        local.input_rows,
        local.splits,
        local.coins,
    )
    data = gcs.bucket(buckets["data"])
    for split in SPLITS:
        for name in shard_names(split, 1):
            remote = data.blob(f"out/features/{name}").download_as_bytes()
            assert remote == (tmp_path / "features" / name).read_bytes(), name
    assert (
        data.blob("out/rejected.csv").download_as_bytes()
        == (tmp_path / "rejected.csv").read_bytes()
    )


def test_failed_job_fails_the_step_with_the_jobs_error(buckets, standin, caplog):
    standin(fail_with="ValueError: worker could not parse line 7")
    # The logger named: an earlier step-CLI test in this process may have quieted Beam.
    with (
        caplog.at_level(logging.INFO, logger="apache_beam.runners.dataflow"),
        pytest.raises(TransformError) as failure,
    ):
        _run_on_dataflow(buckets)
    assert "FAILED" in str(failure.value)
    assert "worker could not parse line 7" in str(failure.value)
    # The job's state and its messages reached the step's log.
    assert "is in state JOB_STATE_FAILED" in caplog.text
    assert "worker could not parse line 7" in caplog.text


def test_step_logging_keeps_the_dataflow_job_progress():
    """The step CLIs quiet Beam to warnings, but not the Dataflow poller: its job states and
    messages are the transform's progress with runner=dataflow."""
    from components.common.cli import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging()
        poller = logging.getLogger("apache_beam.runners.dataflow.dataflow_runner")
        assert poller.isEnabledFor(logging.INFO)
        assert not logging.getLogger("apache_beam.runners.portability").isEnabledFor(logging.INFO)
        configure_logging(quiet=True)
        assert not poller.isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], root.level = saved
        logging.getLogger("apache_beam").setLevel(logging.NOTSET)
        logging.getLogger("apache_beam.runners.dataflow").setLevel(logging.NOTSET)


class _Unguarded(Exception):
    """SIGTERM reached the test's own handler: nothing guarded the wait."""


def test_sigterm_during_the_wait_cancels_the_job_and_fails_the_step(
    buckets, standin, monkeypatch, capsys
):
    """The pod gets SIGTERM (spot node reclaimed, KFP retry) while the step waits for the
    job: Beam's client sends jobs.update with requestedState JOB_STATE_CANCELLED to the
    stand-in, and the step CLI exits 1 saying so (no second job keeps billing)."""
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    from components.transform import __main__ as cli

    service = standin(hold=True, sigterm_on_poll=1)
    kwargs = cli._dataflow_kwargs
    monkeypatch.setattr(
        cli, "_dataflow_kwargs", lambda args: {**kwargs(args), "dataflow_endpoint": ENDPOINT}
    )
    options = _options(buckets)
    data = f"gs://{buckets['data']}"
    argv = [f"{data}/raw/bitcoin.csv", "--output-dir", f"{data}/out", "--runner", "dataflow"]
    for key in ("project", "region", "temp_location", "staging_location"):
        argv += [f"--{key.replace('_', '-')}", options[key]]
    argv += ["--service-account-email", WORKER_SA, "--sdk-container-image", IMAGE]
    argv += ["--subnetwork", SUBNETWORK, "--job-name", "crypto-transform-sigterm"]

    def unguarded(signum, frame):
        raise _Unguarded("SIGTERM was not handled by the step")

    previous = signal.signal(signal.SIGTERM, unguarded)  # never the default: it kills pytest
    try:
        code = cli.main(argv)
        assert signal.getsignal(signal.SIGTERM) is unguarded  # the step's handler is gone
    finally:
        signal.signal(signal.SIGTERM, previous)
        # Beam's poller thread sees the job cancelled at its next poll, then ends.
        for thread in threading.enumerate():
            if getattr(thread, "_target", None) is DataflowRunner.poll_for_job_completion:
                thread.join(timeout=60)
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(service.created) == 1
    job = f"/v1b3/projects/{PROJECT}/locations/europe-west1/jobs/{service.JOB_ID}"
    assert ("PUT", job) in service.paths
    (update,) = service.updates
    assert job_state(update["requestedState"]) == "JOB_STATE_CANCELLED"
    assert service.state == "JOB_STATE_CANCELLED"
    assert f"Dataflow job crypto-transform-sigterm ({service.JOB_ID})" in err
    assert "terminated (received SIGTERM" in err and "cancellation was requested" in err
