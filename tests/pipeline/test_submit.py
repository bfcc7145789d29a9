"""Submitting to Kubeflow Pipelines, against a loopback stub of the KFP v2beta1 REST API.

The stub implements what ``kfp.Client.create_run_from_pipeline_package`` calls: the health
check, listing experiments by name, creating an experiment, creating a run; and what the
recurring runs need (``tests/pipeline/test_schedule.py``): finding, uploading and
versioning a pipeline, creating, listing and deleting recurring runs. It records every
request so the tests can check what a real API server would have received.
"""

import email.parser
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from components.common.placement import PIPELINES_LABEL
from components.images import STEPS, image_refs
from pipeline.crypto_pipeline import compile_pipeline
from pipeline.profiles import gcp_arguments
from pipeline.submit import (
    KfpUnreachableError,
    SubmitError,
    check_registry,
    run_url,
    submit,
)
from tests.pipeline.test_profiles import KUBECONFIG_SECRET, stack_outputs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGISTRY = stack_outputs()["registry_url"]
TAG = "abc123"
API = "/apis/v2beta1"


class KfpStub(ThreadingHTTPServer):
    """Just enough of the KFP API server; ``requests`` holds (method, path, query, body)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict, dict | None]] = []
        self.experiments: list[dict] = []
        self.healthz = (200, {"multi_user": False, "pipeline_store": "database"})
        self.run_reply = (200, None)  # None: accept the run
        self.pipelines: list[dict] = []
        self.versions: list[dict] = []
        self.recurring_runs: list[dict] = []
        self.uploads: list[tuple[str, dict, str]] = []  # (path, query, uploaded file text)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, method: str, path: str) -> list[dict]:
        return [body for m, p, _, body in self.requests if (m, p) == (method, path)]


class _Handler(BaseHTTPRequestHandler):
    server: KfpStub

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> tuple[str, dict, dict | None]:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = parse_qs(parts.query)
        content_type = self.headers.get("Content-Type", "")
        body = None
        if content_type.startswith("multipart/form-data"):  # a pipeline upload
            message = email.parser.BytesParser().parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + raw
            )
            [upload] = [part.get_payload(decode=True) for part in message.get_payload()]
            self.server.uploads.append((parts.path, query, upload.decode()))
        elif raw:
            body = json.loads(raw)
        self.server.requests.append((self.command, parts.path, query, body))
        return parts.path, query, body

    @staticmethod
    def _named(items: list[dict], query: dict) -> list[dict]:
        if "filter" not in query:
            return items
        wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
        return [item for item in items if item["display_name"] == wanted]

    def do_GET(self):
        path, query, _ = self._record()
        if path == f"{API}/healthz":
            self._reply(*self.server.healthz)
        elif path == f"{API}/experiments":
            wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            found = [e for e in self.server.experiments if e["display_name"] == wanted]
            self._reply(200, {"experiments": found, "total_size": len(found)} if found else {})
        elif path == f"{API}/pipelines":
            found = self._named(self.server.pipelines, query)
            self._reply(200, {"pipelines": found, "total_size": len(found)} if found else {})
        elif path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
            pipeline_id = path.split("/")[-2]
            mine = [v for v in self.server.versions if v["pipeline_id"] == pipeline_id]
            found = self._named(mine, query)
            self._reply(200, {"pipeline_versions": found} if found else {})
        elif path == f"{API}/recurringruns":
            wanted = query.get("experiment_id", [None])[0]
            found = [r for r in self.server.recurring_runs if r["experiment_id"] == wanted]
            self._reply(200, {"recurringRuns": found, "total_size": len(found)} if found else {})
        else:
            self._reply(404, {"error": f"no route {path}"})

    def do_DELETE(self):
        path, _, _ = self._record()
        prefix = f"{API}/recurringruns/"
        gone = [r for r in self.server.recurring_runs if prefix + r["recurring_run_id"] == path]
        if not gone:
            self._reply(404, {"error": f"no recurring run at {path}"})
            return
        self.server.recurring_runs.remove(gone[0])
        self._reply(200, {})

    def do_POST(self):
        path, _, body = self._record()
        if path == f"{API}/experiments":
            experiment = {**body, "experiment_id": f"exp-{len(self.server.experiments) + 1}"}
            self.server.experiments.append(experiment)
            self._reply(200, experiment)
        elif path == f"{API}/runs":
            status, error = self.server.run_reply
            if error is not None:
                self._reply(status, {"error": error, "code": 3, "message": error})
                return
            self._reply(200, {**body, "run_id": "run-0001", "state": "PENDING"})
        elif path == f"{API}/pipelines/upload":
            name = parse_qs(urlsplit(self.path).query)["name"][0]
            pipeline = {
                "pipeline_id": f"pipe-{len(self.server.pipelines) + 1}",
                "display_name": name,
            }
            self.server.pipelines.append(pipeline)
            self._reply(200, pipeline)
        elif path == f"{API}/pipelines/upload_version":
            query = parse_qs(urlsplit(self.path).query)
            version = {
                "pipeline_id": query["pipelineid"][0],
                "pipeline_version_id": f"ver-{len(self.server.versions) + 1}",
                "display_name": query["name"][0],
            }
            self.server.versions.append(version)
            self._reply(200, version)
        elif path == f"{API}/recurringruns":
            number = len(self.server.requests)
            run = {**body, "recurring_run_id": f"rr-{number}", "status": "ENABLED"}
            self.server.recurring_runs.append(run)
            self._reply(200, run)
        else:
            self._reply(404, {"error": f"no route {path}"})


@pytest.fixture
def kfp_stub():
    server = KfpStub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gcp_yaml(tmp_path_factory) -> Path:
    """The pipeline compiled with images in the stack's registry."""
    return compile_pipeline(
        tmp_path_factory.mktemp("gcp") / "pipeline.gcp.yaml", image_refs(REGISTRY, TAG)
    )


@pytest.fixture
def outputs_file(tmp_path) -> Path:
    path = tmp_path / "stack-outputs.json"
    # As written with --show-secrets: the kubeconfig must still never be printed.
    path.write_text(json.dumps(stack_outputs() | {"kubeconfig": KUBECONFIG_SECRET}))
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
    )


def _documents(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


def compiled_images(pipeline_yaml: Path) -> dict[str, str]:
    """Executor name (``exec-<step>-op``) -> container image, from a compiled pipeline."""
    executors = _documents(pipeline_yaml)[0]["deploymentSpec"]["executors"]
    return {name: spec["container"]["image"] for name, spec in sorted(executors.items())}


def test_compiled_for_the_registry(gcp_yaml):
    images = compiled_images(gcp_yaml)
    assert images == {f"exec-{step}-op": f"{REGISTRY}/{step}:{TAG}" for step in STEPS}


def test_images_outside_the_stack_registry_are_refused():
    images = image_refs(REGISTRY, TAG) | {"train": "docker.io/someone/train:latest"}
    with pytest.raises(SubmitError, match="not in the stack's registry .*train=docker.io"):
        check_registry(images, REGISTRY)
    check_registry(image_refs(REGISTRY, TAG), REGISTRY + "/")


def test_submit_sends_our_pipeline_with_the_gcp_arguments(kfp_stub, gcp_yaml):
    arguments = gcp_arguments(stack_outputs())
    run_id = submit(
        kfp_stub.url,
        gcp_yaml,
        arguments,
        experiment="crypto-forecast",
        run_name="nightly",
        namespace=None,
        pipeline_root=stack_outputs()["pipeline_root"],
    )
    assert run_id == "run-0001"

    [created] = kfp_stub.bodies("POST", f"{API}/experiments")
    assert created["display_name"] == "crypto-forecast"
    [run] = kfp_stub.bodies("POST", f"{API}/runs")
    assert run["experiment_id"] == "exp-1"
    assert run["display_name"] == "nightly"
    assert run["runtime_config"]["parameters"] == arguments
    assert run["runtime_config"]["pipeline_root"] == stack_outputs()["pipeline_root"]

    pipeline_doc, platform_doc = _documents(gcp_yaml)
    spec = run["pipeline_spec"]
    assert spec["pipeline_spec"] == pipeline_doc  # exactly what we compiled
    sent = {
        name: e["container"]["image"]
        for name, e in spec["pipeline_spec"]["deploymentSpec"]["executors"].items()
    }
    assert sent == {f"exec-{step}-op": f"{REGISTRY}/{step}:{TAG}" for step in STEPS}
    assert spec["platform_spec"] == platform_doc
    placed = spec["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all(e["nodeSelector"]["labels"] == PIPELINES_LABEL for e in placed.values())


def test_an_existing_experiment_is_reused(kfp_stub, gcp_yaml):
    kfp_stub.experiments.append({"experiment_id": "exp-old", "display_name": "crypto-forecast"})
    submit(
        kfp_stub.url,
        gcp_yaml,
        gcp_arguments(stack_outputs()),
        experiment="crypto-forecast",
        run_name=None,
        namespace=None,
    )
    assert kfp_stub.bodies("POST", f"{API}/experiments") == []
    [run] = kfp_stub.bodies("POST", f"{API}/runs")
    assert run["experiment_id"] == "exp-old"
    assert run["display_name"].startswith("crypto-forecast ")  # default: pipeline name + time


def test_unreachable_host_says_how_to_port_forward(gcp_yaml):
    host = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(KfpUnreachableError) as err:
        submit(host, gcp_yaml, {}, experiment="x", run_name=None, namespace=None)
    message = str(err.value)
    assert f"cannot reach Kubeflow Pipelines at {host}" in message
    assert "make kubeconfig" in message
    assert "kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80" in message
    assert "--host http://localhost:8080" in message


def test_a_server_that_is_not_kfp_is_named(kfp_stub, gcp_yaml):
    kfp_stub.healthz = (404, {"error": "not found"})
    with pytest.raises(KfpUnreachableError, match="HTTP 404.*does not look like"):
        submit(kfp_stub.url, gcp_yaml, {}, experiment="x", run_name=None, namespace=None)
    assert kfp_stub.bodies("POST", f"{API}/runs") == []


def test_multi_user_install_needs_a_namespace(kfp_stub, gcp_yaml):
    kfp_stub.healthz = (200, {"multi_user": True})
    with pytest.raises(SubmitError, match="multi-user.*--namespace"):
        submit(kfp_stub.url, gcp_yaml, {}, experiment="x", run_name=None, namespace=None)


def test_a_refused_run_reports_the_server_message(kfp_stub, gcp_yaml):
    kfp_stub.run_reply = (400, "Invalid input error: parameter lake is not a string")
    with pytest.raises(SubmitError, match="HTTP 400.*parameter lake is not a string"):
        submit(
            kfp_stub.url,
            gcp_yaml,
            gcp_arguments(stack_outputs()),
            experiment="x",
            run_name=None,
            namespace=None,
        )


def test_run_url_points_at_the_ui_run_page():
    assert run_url("http://localhost:8080/", "abc") == "http://localhost:8080/#/runs/details/abc"


# -- the CLI, in a subprocess (fresh imports, as `make pipeline` runs it) -----------------


def test_cli_dry_run_shows_registry_images_and_submits_nothing(kfp_stub, outputs_file, tmp_path):
    out = tmp_path / "crypto_pipeline.gcp.yaml"
    proc = _cli(
        "--dry-run",
        "--stack-outputs",
        str(outputs_file),
        "--host",
        kfp_stub.url,
        "--output",
        str(out),
        "--n-trials",
        "4",
        "--tag",
        TAG,
        "--allow-unpinned",
    )
    assert proc.returncode == 0, proc.stderr
    for step in STEPS:
        assert f"{REGISTRY}/{step}:{TAG}" in proc.stdout, step
    assert "lake = 'gs://crypto-kfp-raw-acme-forecasting'" in proc.stdout
    assert "model_repository = 'gs://crypto-kfp-models-acme-forecasting/repository'" in proc.stdout
    assert "n_trials = 4" in proc.stdout
    assert "Dry run: nothing submitted" in proc.stdout
    assert "deploy_target = 'gke'" in proc.stdout and "Deploy (GKE):" in proc.stdout
    assert "warning" not in proc.stderr
    assert KUBECONFIG_SECRET not in proc.stdout + proc.stderr
    assert compiled_images(out) == {f"exec-{s}-op": f"{REGISTRY}/{s}:{TAG}" for s in STEPS}
    assert kfp_stub.requests == []


def test_cli_submits_and_prints_the_run_url(kfp_stub, outputs_file, tmp_path):
    images = {
        step: f"{REGISTRY}/{step}@sha256:{'ab' * 32}" for step in (*STEPS, "transform-worker")
    }
    images_file = tmp_path / "images.json"
    images_file.write_text(json.dumps(images))
    proc = _cli(
        "--stack-outputs",
        str(outputs_file),
        "--host",
        kfp_stub.url,
        "--output",
        str(tmp_path / "p.yaml"),
        "--experiment",
        "crypto-nightly",
        "--run-name",
        "cli run",
        "--coins",
        "bitcoin,ethereum",
        "--images",
        str(images_file),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"Run details: {kfp_stub.url}/#/runs/details/run-0001" in proc.stdout
    assert KUBECONFIG_SECRET not in proc.stdout + proc.stderr
    [created] = kfp_stub.bodies("POST", f"{API}/experiments")
    assert created["display_name"] == "crypto-nightly"
    [run] = kfp_stub.bodies("POST", f"{API}/runs")
    assert run["display_name"] == "cli run"
    assert run["runtime_config"]["parameters"] == gcp_arguments(stack_outputs()) | {
        "coins": "bitcoin,ethereum"
    }
    sent = {
        e["container"]["image"]
        for e in run["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"].values()
    }
    assert sent == {ref for step, ref in images.items() if step in STEPS}
    # The Dataflow workers' image goes to the transform task as a constant.
    assert images["transform-worker"] in json.dumps(run["pipeline_spec"])


def test_cli_refuses_unpinned_images_and_names_them(kfp_stub, outputs_file, tmp_path):
    proc = _cli(
        "--dry-run",
        "--stack-outputs",
        str(outputs_file),
        "--host",
        kfp_stub.url,
        "--output",
        str(tmp_path / "p.yaml"),
        "--tag",
        TAG,
    )
    assert proc.returncode == 2
    assert (
        "deploy, ingest, train, transform, transform-worker, tune are not pinned to a digest"
        in proc.stderr
    )
    assert "--allow-unpinned" in proc.stderr
    assert not (tmp_path / "p.yaml").exists() and kfp_stub.requests == []


def _task_caching(pipeline_spec: dict) -> dict[str, bool]:
    tasks = dict(pipeline_spec["root"]["dag"]["tasks"])
    for component in pipeline_spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return {
        name: t.get("cachingOptions", {}).get("enableCache", False)
        for name, t in tasks.items()
        if name.endswith("-op")
    }


def test_deploy_is_never_cached_and_no_cache_turns_every_cache_off(kfp_stub, gcp_yaml):
    compiled = _task_caching(_documents(gcp_yaml)[0])
    assert compiled == {
        # A scheduled run's source may have new bytes under the same name: always read it.
        "ingest-op": False,
        "transform-op": True,
        "tune-op": True,
        "train-op": True,
        "deploy-op": False,
    }
    submit(
        kfp_stub.url,
        gcp_yaml,
        {},
        experiment="x",
        run_name=None,
        namespace=None,
        enable_caching=False,
    )
    [run] = kfp_stub.bodies("POST", f"{API}/runs")
    assert set(_task_caching(run["pipeline_spec"]["pipeline_spec"]).values()) == {False}


def test_cli_unreachable_host_exits_2_with_the_hint(outputs_file, tmp_path):
    proc = _cli(
        "--allow-unpinned",
        "--stack-outputs",
        str(outputs_file),
        "--output",
        str(tmp_path / "p.yaml"),
        "--host",
        f"http://127.0.0.1:{_closed_port()}",
    )
    assert proc.returncode == 2
    assert "port-forward svc/ml-pipeline-ui 8080:80" in proc.stderr


def test_cli_missing_output_exits_2_before_compiling(tmp_path):
    partial = tmp_path / "partial.json"
    partial.write_text(
        json.dumps({k: v for k, v in stack_outputs().items() if k != "registry_url"})
    )
    proc = _cli("--dry-run", "--stack-outputs", str(partial), "--output", str(tmp_path / "p.yaml"))
    assert proc.returncode == 2
    assert "registry_url" in proc.stderr and "pulumi up" in proc.stderr
    assert not (tmp_path / "p.yaml").exists()
