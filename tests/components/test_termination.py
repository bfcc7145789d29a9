"""components.common.termination: the guard around a step's wait for a cloud job (the
Dataflow and Vertex AI waits are tested against their stand-ins; here the guard's rules)."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest

from components.common.termination import Terminated, cancel_on_exit


class Failed(RuntimeError):
    pass


class _Unguarded(Exception):
    pass


@pytest.fixture
def test_handler():
    """A SIGTERM handler of the test's (the default would kill pytest), restored after."""

    def unguarded(signum, frame):
        raise _Unguarded("SIGTERM reached the test's handler")

    previous = signal.signal(signal.SIGTERM, unguarded)
    yield unguarded
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_cancels_fails_the_step_and_restores_the_handler(test_handler):
    calls = []

    def cancel() -> bool:
        calls.append("cancel")
        os.kill(os.getpid(), signal.SIGTERM)  # a second one, during the cancel: ignored
        return True

    with pytest.raises(Failed) as failure:
        with cancel_on_exit(cancel, lambda: "job 7", Failed):
            os.kill(os.getpid(), signal.SIGTERM)
            threading.Event().wait(5)  # the wait the signal interrupts
            pytest.fail("SIGTERM did not interrupt the wait")
    assert calls == ["cancel"]
    assert isinstance(failure.value.__cause__, Terminated)
    assert str(failure.value).startswith("job 7: the step was terminated (received SIGTERM")
    assert str(failure.value).endswith("its cancellation was requested")
    assert signal.getsignal(signal.SIGTERM) is test_handler


def test_any_other_exit_cancels_and_keeps_its_error(test_handler):
    calls = []
    with pytest.raises(KeyError):
        with cancel_on_exit(lambda: calls.append("cancel") or True, "job", Failed):
            raise KeyError("poll failed")
    assert calls == ["cancel"]
    assert signal.getsignal(signal.SIGTERM) is test_handler


def test_the_jobs_own_end_cancels_nothing(test_handler):
    calls = []
    with cancel_on_exit(lambda: calls.append("cancel") or True, "job", Failed):
        pass
    assert calls == [] and signal.getsignal(signal.SIGTERM) is test_handler


def test_a_failing_cancel_is_logged_not_raised_over_the_termination(test_handler, caplog):
    def cancel() -> bool:
        raise ConnectionError("API unreachable")

    with caplog.at_level(logging.ERROR), pytest.raises(Failed) as failure:
        with cancel_on_exit(cancel, "job 8", Failed):
            os.kill(os.getpid(), signal.SIGTERM)
            threading.Event().wait(5)
    assert "cancelling it failed (API unreachable): cancel it in the console" in str(failure.value)
    assert "job 8: could not be cancelled" in caplog.text


def test_nothing_to_cancel_says_so(test_handler):
    with pytest.raises(Failed, match="no job was running, nothing to cancel"):
        with cancel_on_exit(lambda: False, "job", Failed):
            os.kill(os.getpid(), signal.SIGTERM)
            threading.Event().wait(5)


def test_outside_the_main_thread_the_handler_is_left_alone(test_handler):
    seen = []

    def body():
        with cancel_on_exit(lambda: True, "job", Failed):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [test_handler]
