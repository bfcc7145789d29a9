"""The one hook into kfp.local (pipeline/kfp_local_tasks.py) still fits the installed kfp.

If one of these fails after a kfp upgrade, kfp.local moved the per-task function the
adapter wraps: update pipeline/kfp_local_tasks.py, not these tests.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as types.
import importlib
import inspect

import pytest
from kfp import dsl, local

from pipeline.kfp_local_tasks import (
    HOOKED_FUNCTION,
    HOOKED_KEYWORDS,
    HOOKED_MODULE,
    TaskRun,
    observe_tasks,
)

ADAPTER = "pipeline/kfp_local_tasks.py"


def test_the_hooked_function_exists_with_the_keywords_read():
    module = importlib.import_module(HOOKED_MODULE)
    function = getattr(module, HOOKED_FUNCTION, None)
    assert function is not None, f"{HOOKED_MODULE}.{HOOKED_FUNCTION} is gone: update {ADAPTER}"
    parameters = inspect.signature(function).parameters
    missing = [k for k in HOOKED_KEYWORDS if k not in parameters]
    assert not missing, f"{HOOKED_FUNCTION} lost {missing}: update {ADAPTER}"


@pytest.mark.parametrize("orchestrator", ["dag_orchestrator", "enhanced_dag_orchestrator"])
def test_both_orchestrators_call_it_through_its_module(orchestrator):
    source = inspect.getsource(importlib.import_module(f"kfp.local.orchestrator.{orchestrator}"))
    assert f"task_executor.{HOOKED_FUNCTION}(" in source, (
        f"kfp.local's {orchestrator} no longer calls task_executor.{HOOKED_FUNCTION} through "
        f"the module, so wrapping it sees nothing: update {ADAPTER}"
    )


@dsl.component(base_image="python:3.11-slim")
def _shout(word: str) -> str:
    print(f"saying {word}")
    return word.upper()


@dsl.component(base_image="python:3.11-slim")
def _fail(word: str):
    print(f"about to fail on {word}")
    raise ValueError(f"no {word}")


@dsl.pipeline(name="hooked")
def _hooked(word: str = "hi"):
    first = _shout(word=word)
    _fail(word=first.output)


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_every_task_is_observed_with_status_tail_and_outputs(tmp_path):
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path),
        raise_on_error=False,
    )
    started: list[str] = []
    ended: list[TaskRun] = []
    with observe_tasks(started.append, ended.append):
        _hooked(word="hi")
    assert started == ["shout", "fail"]
    shout, fail = ended
    assert (shout.task, shout.succeeded, fail.task, fail.succeeded) == (
        "shout",
        True,
        "fail",
        False,
    )
    assert shout.outputs == {"Output": "HI"}
    assert any("saying hi" in line for line in shout.output_tail)
    assert any("ValueError: no HI" in line for line in fail.output_tail)
    assert shout.seconds > 0
    assert (tmp_path / shout.pipeline_resource_name / "shout").is_dir()
    # Outside the block kfp.local is untouched again.
    module = importlib.import_module(HOOKED_MODULE)
    assert getattr(module, HOOKED_FUNCTION).__module__ == HOOKED_MODULE
