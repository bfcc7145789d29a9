"""A loopback stand-in of the Dataflow REST API (v1b3 jobs), for Beam's real DataflowRunner.

Beam's options validator accepts only an endpoint without a port, and its client speaks
REST (not gRPC) to an endpoint naming ``localhost``; so the runner is given
``http://dataflow.localhost`` and reaches this server as its HTTP proxy (``http_proxy``),
while the GCS emulator on 127.0.0.1 is reached directly (``no_proxy``).

On a create request the server records the job and, like the service, runs the pipeline
the job names: the staged ``pipeline.pb``, executed in-process with Beam's FnApiRunner
(every environment made embedded) against the same GCS emulator. Job state is RUNNING
until that ends, then DONE, or FAILED with the error as a JOB_MESSAGE_ERROR.

With ``hold`` the job runs nothing and stays RUNNING until a jobs.update (PUT) requests
JOB_STATE_CANCELLED; with ``sigterm_on_poll=n`` this process gets SIGTERM (its node
reclaimed) as the stand-in answers the n-th read of the job's state.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ENDPOINT = "http://dataflow.localhost"
_CREATE = re.compile(r"/v1b3/projects/([^/]+)/locations/([^/]+)/jobs")
_JOB = re.compile(r"/v1b3/projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)(/messages)?")


class DataflowStandIn:
    JOB_ID = "2026-12-01_00_00_00-123"

    def __init__(
        self,
        storage_client,
        *,
        fail_with: str | None = None,
        hold: bool = False,
        sigterm_on_poll: int | None = None,
    ) -> None:
        self.storage_client = storage_client
        self.fail_with = fail_with
        self.hold = hold
        self.sigterm_on_poll = sigterm_on_poll
        self.polls = 0
        self.created: list[dict] = []
        self.updates: list[dict] = []
        self.paths: list[tuple[str, str]] = []
        self.state = "JOB_STATE_QUEUED"
        self.messages: list[dict] = []
        self.thread: threading.Thread | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.proxy = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread:
            self.thread.join(timeout=120)

    def _execute(self, job: dict) -> None:
        try:
            if self.fail_with:
                raise RuntimeError(self.fail_with)
            run_staged_pipeline(job, self.storage_client)
            self.state = "JOB_STATE_DONE"
        except Exception as exc:  # the job fails, as on the service, with its message
            self.messages.append(
                {
                    "id": "1",
                    "time": "2026-12-01T00:00:01Z",
                    "messageImportance": "JOB_MESSAGE_ERROR",
                    "messageText": f"Traceback (most recent call last): {exc}\n"
                    + traceback.format_exc(limit=1),
                }
            )
            self.state = "JOB_STATE_FAILED"

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _path(self) -> str:
                path = urlsplit(self.path).path  # proxied: an absolute URL
                outer.paths.append((self.command, path))
                return path

            def do_POST(self) -> None:  # noqa: N802
                match = _CREATE.fullmatch(self._path())
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not match:
                    return self._reply({"error": {"code": 404, "message": "no such"}}, 404)
                outer.created.append(body)
                outer.state = "JOB_STATE_RUNNING"
                if not outer.hold:
                    outer.thread = threading.Thread(
                        target=outer._execute, args=(body,), daemon=True
                    )
                    outer.thread.start()
                self._reply(
                    {
                        "id": outer.JOB_ID,
                        "projectId": match[1],
                        "location": match[2],
                        "name": body["name"],
                        "clientRequestId": body["clientRequestId"],
                        "currentState": "JOB_STATE_QUEUED",
                    }
                )

            def do_GET(self) -> None:  # noqa: N802
                match = _JOB.fullmatch(self._path())
                if not match:
                    return self._reply({"error": {"code": 404, "message": "no such"}}, 404)
                if match[4]:
                    return self._reply({"jobMessages": outer.messages})
                self._reply({"id": match[3], "projectId": match[1], "currentState": outer.state})
                outer.polls += 1
                if outer.polls == outer.sigterm_on_poll:
                    os.kill(os.getpid(), signal.SIGTERM)

            def do_PUT(self) -> None:  # noqa: N802
                """jobs.update: the one change a client may ask for here, cancelling."""
                match = _JOB.fullmatch(self._path())
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not match or match[4]:
                    return self._reply({"error": {"code": 404, "message": "no such"}}, 404)
                outer.updates.append(body)
                if job_state(body.get("requestedState")) == "JOB_STATE_CANCELLED":
                    outer.state = "JOB_STATE_CANCELLED"
                self._reply({"id": match[3], "projectId": match[1], "currentState": outer.state})

        return Handler


def job_state(value) -> str | None:
    """A JobState as its name: Beam's REST client sends enums as numbers."""
    from google.cloud.dataflow_v1beta3 import JobState

    return JobState(value).name if isinstance(value, int) else value


def run_staged_pipeline(job: dict, storage_client) -> None:
    """Run the pipeline proto a Dataflow job request names, with the FnApiRunner."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability.api import beam_runner_api_pb2
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    url = job["environment"]["sdkPipelineOptions"]["options"]["pipelineUrl"]
    bucket, name = url.removeprefix("gs://").split("/", 1)
    proto = beam_runner_api_pb2.Pipeline.FromString(
        storage_client.bucket(bucket).blob(name).download_as_bytes()
    )
    for environment in proto.components.environments.values():
        # The workers' image here is this process.
        environment.urn = "beam:env:embedded_python:v1"
        environment.payload = b""
    pipeline = beam.Pipeline.from_runner_api(proto, runner=FnApiRunner(), options=PipelineOptions())
    pipeline.run().wait_until_finish()
