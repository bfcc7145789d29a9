"""Run the compiled pipeline on this machine with ``kfp.local`` (SubprocessRunner).

``kfp.local`` runs each Lightweight Python Component in a subprocess of this
interpreter (``use_venv=False``: the project's virtual environment already holds every
step's dependencies, which is what each step's image holds in the cloud). Around it
this module adds what a person running it wants to see: progress per step, the wall
time of each, the failing step's last output lines, and a summary of the model
against the persistence baseline and the gate decision.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.uris import is_gcs_uri, is_local, local_path
from components.images import STEPS, image_for

#: Task names in the compiled pipeline (KFP derives them from the component functions).
TASK_OF_STEP = {step: f"{step}-op" for step in STEPS}


class SourceUnavailableError(RuntimeError):
    """The data source cannot be reached; raised before any step starts."""


@dataclass
class StepRecord:
    step: str
    status: str = "NOT RUN"  # SUCCEEDED | FAILED | SKIPPED | NOT RUN
    seconds: float = 0.0
    output_tail: list[str] = field(default_factory=list)


@dataclass
class LocalRunResult:
    run_dir: Path | None
    steps: dict[str, StepRecord]
    task_outputs: dict[str, dict[str, Any]]
    arguments: dict[str, Any]
    wall_seconds: float

    @property
    def succeeded(self) -> bool:
        return all(r.status in ("SUCCEEDED", "SKIPPED") for r in self.steps.values())

    @property
    def failed_step(self) -> StepRecord | None:
        return next((r for r in self.steps.values() if r.status == "FAILED"), None)

    def artifact(self, step: str, name: str) -> dict[str, Any] | None:
        """``{"uri": ..., "metadata": {...}}`` of one output artifact, if the step wrote it."""
        arts = self.task_outputs.get(step, {}).get("artifacts", {}).get(name, {})
        items = arts.get("artifacts") or []
        return items[0] if items else None

    def parameter(self, step: str, name: str = "Output") -> Any:
        return self.task_outputs.get(step, {}).get("parameterValues", {}).get(name)


#: Backends this machine can run; the others belong to the cloud profile.
LOCAL_CHOICES = {"runner": ("local",), "tune_backend": ("optuna",), "deploy_target": ("local",)}


def check_local_arguments(arguments: dict[str, Any]) -> None:
    """Refuse, before any step runs, backends that cannot run on this machine."""
    for name, allowed in LOCAL_CHOICES.items():
        value = arguments.get(name)
        if value is not None and value not in allowed:
            raise ValueError(
                f"{name}={value!r} cannot run locally; a local run uses "
                f"{' or '.join(map(repr, allowed))} (cloud backends are submitted with "
                "`make pipeline`)"
            )


def check_source_reachable(source: str, timeout: float = 5.0) -> None:
    """Fail fast, before any step runs, when an https source cannot be reached."""
    if is_gcs_uri(source):
        return  # ingest reports a missing object or credentials with the client's reason
    if is_local(source):
        path = local_path(source)  # the same resolution ingest applies
        if not path.is_file():
            raise SourceUnavailableError(f"source file not found: {path}")
        return
    request = urllib.request.Request(source, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500 and exc.code not in (403, 404):
            return  # reachable; ingest validates the body itself
        raise SourceUnavailableError(f"source {source} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceUnavailableError(
            f"cannot reach {source} ({reason}). This machine seems to have no internet "
            "access. Point the pipeline at a local copy instead, e.g.\n"
            "    make local SOURCE=path/to/crypto-markets.csv\n"
            "or  python -m pipeline run-local --source path/to/crypto-markets.csv"
        ) from exc


class _TailWriter(io.TextIOBase):
    """Passes writes through and keeps the last lines (for the failure summary)."""

    def __init__(self, target, keep: int = 25):
        self.target = target
        self.lines: deque[str] = deque(maxlen=keep)
        self._partial = ""

    def write(self, text: str) -> int:
        self.target.write(text)
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        self.lines.extend(line.rstrip() for line in complete if line.strip())
        return len(text)

    def flush(self) -> None:
        self.target.flush()


@contextlib.contextmanager
def _record_steps(records: dict[str, StepRecord], progress):
    """Time each step's subprocess and keep its output tail.

    kfp.local has no per-task timing hook, so this wraps its subprocess task handler
    for the duration of the run and restores it afterwards.
    """
    from kfp.local import subprocess_task_handler

    handler_cls = subprocess_task_handler.SubprocessTaskHandler
    original_run = handler_cls.run
    step_of_image = {image_for(step): step for step in STEPS}

    def timed_run(handler):
        step = step_of_image.get(handler.image, handler.image)
        record = records.setdefault(step, StepRecord(step))
        index = list(STEPS).index(step) + 1 if step in STEPS else "?"
        progress(f"==> [{index}/{len(STEPS)}] {step}: running")
        tail = _TailWriter(sys.stdout)
        start = time.perf_counter()
        with contextlib.redirect_stdout(tail):
            status = original_run(handler)
        record.seconds = time.perf_counter() - start
        record.status = "SUCCEEDED" if status.name == "SUCCESS" else "FAILED"
        record.output_tail = list(tail.lines)
        progress(f"==> [{index}/{len(STEPS)}] {step}: {record.status} in {record.seconds:.1f} s")
        return status

    handler_cls.run = timed_run
    try:
        yield
    finally:
        handler_cls.run = original_run


def run_compiled_locally(
    pipeline_yaml: Path,
    arguments: dict[str, Any],
    pipeline_root: Path,
    progress=print,
) -> LocalRunResult:
    """Run a compiled pipeline YAML with kfp.local and collect what each step produced."""
    from kfp import local
    from kfp.components import load_component_from_file
    from kfp.local import pipeline_orchestrator

    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in pipeline_root.iterdir()}
    component = load_component_from_file(str(pipeline_yaml))
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=False,
    )
    records = {step: StepRecord(step) for step in STEPS}
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Our images are named by step, not "python…": kfp.local warns about that.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        # Display names are for the KFP UI; kfp.local says it ignores them.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
        with _record_steps(records, progress):
            pipeline_orchestrator.run_local_pipeline(component.pipeline_spec, arguments)
    wall = time.perf_counter() - start

    new_runs = sorted(p for p in pipeline_root.iterdir() if p.name not in before and p.is_dir())
    run_dir = new_runs[-1] if new_runs else None
    outputs: dict[str, dict[str, Any]] = {}
    for step, task in TASK_OF_STEP.items():
        executor_output = run_dir / task / "executor_output.json" if run_dir else None
        if executor_output and executor_output.is_file():
            outputs[step] = json.loads(executor_output.read_text())
    classify_deploy(records, outputs)
    return LocalRunResult(run_dir, records, outputs, dict(arguments), wall)


def classify_deploy(records: dict[str, StepRecord], outputs: dict[str, dict[str, Any]]) -> None:
    """Mark a deploy that did not run as SKIPPED only when train's gate said no."""
    deploy = records["deploy"]
    gate = outputs.get("train", {}).get("parameterValues", {}).get("Output")
    if deploy.status == "NOT RUN" and records["train"].status == "SUCCEEDED":
        if gate is False:
            deploy.status = "SKIPPED"  # the gate kept the model out, as designed
        else:
            # The gate passed (or train reported nothing) yet deploy never ran: an
            # orchestration fault, never to be mistaken for a deliberate skip.
            deploy.status = "FAILED"
            deploy.output_tail = [f"deploy did not run although train's gate output was {gate!r}"]
