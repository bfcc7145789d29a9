"""Run the compiled pipeline on this machine with ``kfp.local``.

``kfp.local`` runs each Lightweight Python Component in a subprocess of this
interpreter (SubprocessRunner with ``use_venv=False``: the project's virtual environment
already holds every step's dependencies, which is what each step's image holds in the
cloud). Around it this module adds what a person running it wants to see: progress per
step, the wall time of each, the failing step's last output lines (through
``pipeline.kfp_local_tasks``), and the outputs the summary reports.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.uris import is_gcs_uri, is_local, local_path
from components.images import STEPS


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
        value = self.task_outputs.get(step, {}).get(name)
        return value if isinstance(value, dict) else None

    def parameter(self, step: str, name: str = "Output") -> Any:
        return self.task_outputs.get(step, {}).get(name)


#: Backends this machine can run; the others belong to the cloud profile.
LOCAL_CHOICES = {"runner": ("local",), "tune_backend": ("optuna",), "deploy_target": ("local",)}


def local_argument_problems(arguments: dict[str, Any]) -> list[str]:
    """A sentence per backend that cannot run on this machine."""
    problems = []
    for name, allowed in LOCAL_CHOICES.items():
        value = arguments.get(name)
        if value is not None and value not in allowed:
            problems.append(
                f"--{name.replace('_', '-')}: {name}={value!r} cannot run locally;"
                f" a local run uses "
                f"{' or '.join(map(repr, allowed))} (cloud backends are submitted with "
                "`make pipeline`)"
            )
    return problems


def check_local_arguments(arguments: dict[str, Any]) -> None:
    """Refuse, before any step runs, backends that cannot run on this machine."""
    problems = local_argument_problems(arguments)
    if problems:
        raise ValueError("; ".join(problems))


#: Bytes asked for when probing an https source (``Range: bytes=0-N``).
PROBE_BYTES = 1024


def check_source_reachable(source: str, timeout: float = 5.0) -> None:
    """Fail fast, before any step runs, when the source cannot be read.

    An https source is probed with a GET of its first ``PROBE_BYTES`` (a Range request),
    not HEAD: signed URLs and some servers refuse HEAD yet serve GET. A server that
    ignores the range answers 200; only the first bytes are read before closing.
    """
    if is_gcs_uri(source):
        return  # ingest reports a missing object or credentials with the client's reason
    if is_local(source):
        path = local_path(source)  # the same resolution ingest applies
        if not path.is_file():
            raise SourceUnavailableError(f"source file not found: {path}")
        return
    request = urllib.request.Request(
        source, method="GET", headers={"Range": f"bytes=0-{PROBE_BYTES - 1}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(PROBE_BYTES)
            return
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # an empty file has no byte 0: reachable, ingest says "empty"
            return
        raise SourceUnavailableError(f"source {source} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceUnavailableError(
            f"cannot reach {source} ({reason}). This machine seems to have no internet "
            "access. Point the pipeline at a local copy instead, e.g.\n"
            "    make local SOURCE=path/to/crypto-markets.csv\n"
            "or  python -m pipeline run-local --source path/to/crypto-markets.csv"
        ) from exc


def source_problem(source: str, timeout: float = 5.0) -> str:
    """``check_source_reachable`` as a sentence naming ``--source`` ('' when reachable)."""
    try:
        check_source_reachable(source, timeout)
    except SourceUnavailableError as exc:
        return f"--source: {exc}"
    return ""


def docker_runner(writable: list[Path], read_only: list[Path]):
    """kfp.local's DockerRunner with the run's local folders bind-mounted at the same paths
    (kfp.local mounts only the pipeline root): ``writable`` (the data lake, the model
    repository) and ``read_only`` (a local source file). The folders are made writable for
    the image's user first (``prepare_for_image_user``)."""
    from docker.types import Mount
    from kfp import local

    mounts = [Mount(str(p), str(p), type="bind", read_only=False) for p in writable]
    mounts += [Mount(str(p), str(p), type="bind", read_only=True) for p in read_only]
    return local.DockerRunner(mounts=mounts)


def prepare_for_image_user(folders: list[Path]) -> None:
    """Create ``folders`` and let the image's user (uid ``IMAGE_USER_UID``) write in them:
    as root, by giving them to that user; as another user, by opening them to every local
    user (sticky, like /tmp), since a container cannot write as someone else."""
    import os

    from components.images import IMAGE_USER_UID

    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (folder, *folder.rglob("*")):
                os.chown(path, IMAGE_USER_UID, IMAGE_USER_UID, follow_symlinks=False)
        elif os.geteuid() != IMAGE_USER_UID:
            folder.chmod(0o1777)


def task_of_step(step: str) -> str:
    """The task name of a step in the compiled pipeline (KFP derives it from the wrapper)."""
    from pipeline.crypto_pipeline import STEP_FUNCTIONS

    return STEP_FUNCTIONS[step].__name__.replace("_", "-")


def run_compiled_locally(
    pipeline_yaml: Path,
    arguments: dict[str, Any],
    pipeline_root: Path,
    *,
    progress=print,
    cache: bool = False,
    runner=None,
) -> LocalRunResult:
    """Run a compiled pipeline YAML with kfp.local and collect what each step produced.

    ``runner`` is a kfp.local runner (default: ``SubprocessRunner(use_venv=False)``: every
    step runs in this virtual environment, which holds what each step's image holds).
    ``cache`` turns on kfp.local's task cache (deploy is never cached).
    """
    from kfp import local
    from kfp.components import load_component_from_file

    from pipeline.kfp_local_tasks import TaskRun, observe_tasks

    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    pipeline = load_component_from_file(str(pipeline_yaml))
    local.init(
        runner=runner or local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=False,
        enable_caching=cache,
    )
    records = {step: StepRecord(step) for step in STEPS}
    outputs: dict[str, dict[str, Any]] = {}
    step_of_task = {task_of_step(step): step for step in STEPS}
    run_dirs: set[Path] = set()

    def started(task: str) -> None:
        step = step_of_task.get(task, task)
        progress(f"==> [{_index(step)}/{len(STEPS)}] {step}: running")

    def ended(run: TaskRun) -> None:
        step = step_of_task.get(run.task, run.task)
        record = records.setdefault(step, StepRecord(step))
        record.status = "SUCCEEDED" if run.succeeded else "FAILED"
        record.seconds = run.seconds
        record.output_tail = run.output_tail
        outputs[step] = run.outputs
        run_dirs.add(Path(run.pipeline_root) / run.pipeline_resource_name)
        progress(
            f"==> [{_index(step)}/{len(STEPS)}] {step}: {record.status} in {run.seconds:.1f} s"
        )

    start = time.perf_counter()
    with warnings.catch_warnings():
        # Our images are named by step, not "python…": kfp.local warns about that.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        # Display names, resources and placement are for the cluster; kfp.local says it
        # ignores them.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
        with observe_tasks(started, ended):
            pipeline(**arguments)
    wall = time.perf_counter() - start
    run_dir = next(iter(run_dirs)) if len(run_dirs) == 1 else None
    classify_deploy(records, outputs)
    report = outputs.get("train", {}).get("report")
    if isinstance(report, dict) and report.get("uri"):
        html = browsable_copy(report["uri"])
        if html is not None:
            report["html"] = str(html)
    return LocalRunResult(run_dir, records, outputs, dict(arguments), wall)


def browsable_copy(uri: str) -> Path | None:
    """``<artifact>.html`` beside a local HTML artifact (kfp.local names the file after the
    output, ``report``, which a browser shows as text), hard-linked where the file system
    allows, copied where not; None for a remote or missing artifact."""
    if not is_local(uri):
        return None
    path = Path(local_path(uri))
    if not path.is_file() or path.suffix == ".html":
        return None
    target = path.with_name(path.name + ".html")
    target.unlink(missing_ok=True)
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return target


def _index(step: str) -> int | str:
    return STEPS.index(step) + 1 if step in STEPS else "?"


def classify_deploy(records: dict[str, StepRecord], outputs: dict[str, dict[str, Any]]) -> None:
    """Mark a deploy that did not run as SKIPPED only when train's gate said no."""
    deploy = records["deploy"]
    gate = outputs.get("train", {}).get("Output")
    if deploy.status == "NOT RUN" and records["train"].status == "SUCCEEDED":
        if gate is False:
            deploy.status = "SKIPPED"  # the gate kept the model out, as designed
        else:
            # The gate passed (or train reported nothing) yet deploy never ran: an
            # orchestration fault, never to be mistaken for a deliberate skip.
            deploy.status = "FAILED"
            deploy.output_tail = [f"deploy did not run although train's gate output was {gate!r}"]
