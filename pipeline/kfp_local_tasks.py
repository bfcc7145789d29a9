"""The one place this project reaches into kfp.local's internals: per-task progress.

A local run goes through kfp.local's public API (``local.init`` and calling the loaded
pipeline). What that API does not offer is a per-task callback, and a person running the
pipeline wants each step's progress, wall time, status and, when it fails, its last output
lines. kfp.local runs every task of a pipeline through
``kfp.local.orchestrator.task_executor.execute_single_task(task_name=..., ...)``, which both
of its DAG orchestrators call through the module; ``observe_tasks`` wraps that function for
the duration of a run and restores it afterwards.

``tests/pipeline/test_kfp_local_tasks.py`` fails, naming this module, when a kfp upgrade
moves or renames what is hooked here.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Module and function this adapter wraps, and the keyword arguments it reads.
HOOKED_MODULE = "kfp.local.orchestrator.task_executor"
HOOKED_FUNCTION = "execute_single_task"
HOOKED_KEYWORDS = ("task_name", "pipeline_resource_name", "pipeline_root")


@dataclass
class TaskRun:
    """One task as kfp.local ran it (a cache hit counts as a run that succeeded)."""

    task: str
    pipeline_resource_name: str
    pipeline_root: str
    succeeded: bool
    seconds: float
    output_tail: list[str] = field(default_factory=list)
    #: Parameter outputs as values; artifacts as ``{"uri": ..., "metadata": {...}}``.
    outputs: dict[str, Any] = field(default_factory=dict)


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


def _plain(value: Any) -> Any:
    """kfp.local's task outputs as plain data (artifacts become uri + metadata)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "uri") and hasattr(value, "metadata"):
        return {"uri": value.uri, "metadata": dict(value.metadata or {})}
    return value


def _hooked():
    import importlib

    module = importlib.import_module(HOOKED_MODULE)
    function = getattr(module, HOOKED_FUNCTION, None)
    if function is None:
        raise RuntimeError(
            f"{HOOKED_MODULE}.{HOOKED_FUNCTION} no longer exists in this kfp version; "
            "update pipeline/kfp_local_tasks.py to the new kfp.local task runner"
        )
    return module, function


@contextlib.contextmanager
def observe_tasks(
    on_start: Callable[[str], None], on_end: Callable[[TaskRun], None]
) -> Iterator[None]:
    """Call ``on_start(task name)`` before and ``on_end(TaskRun)`` after every task kfp.local
    runs inside the ``with`` block."""
    module, original = _hooked()

    def observed(*args, **kwargs):
        missing = [k for k in HOOKED_KEYWORDS if k not in kwargs]
        if missing:
            raise RuntimeError(
                f"kfp.local called {HOOKED_FUNCTION} without {', '.join(missing)}; "
                "update pipeline/kfp_local_tasks.py to this kfp version"
            )
        task = kwargs["task_name"]
        on_start(task)
        tail = _TailWriter(sys.stdout)
        started = time.perf_counter()
        with contextlib.redirect_stdout(tail):
            outputs, status = original(*args, **kwargs)
        on_end(
            TaskRun(
                task=task,
                pipeline_resource_name=kwargs["pipeline_resource_name"],
                pipeline_root=kwargs["pipeline_root"],
                succeeded=status.name == "SUCCESS",
                seconds=time.perf_counter() - started,
                output_tail=list(tail.lines),
                outputs={name: _plain(v) for name, v in (outputs or {}).items()},
            )
        )
        return outputs, status

    setattr(module, HOOKED_FUNCTION, observed)
    try:
        yield
    finally:
        setattr(module, HOOKED_FUNCTION, original)
