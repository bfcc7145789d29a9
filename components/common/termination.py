"""A cloud job a step starts must not outlive the step.

A step pod gets SIGTERM when its spot node is reclaimed, when the run is stopped, or
before KFP retries it; Python's default is to die at once, and the Dataflow or Vertex AI
job it was waiting for would go on running (and billing) while the retry starts a second
one. ``cancel_on_exit`` turns SIGTERM into an exception for the time of the wait, and on
any exit that is not the job's own end (SIGTERM, Ctrl-C, a failed poll, a bug) sends the
job's cancel request before the step exits with an error that says so.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Terminated(BaseException):
    """SIGTERM arrived during a guarded wait. A BaseException, like KeyboardInterrupt, so
    that no ``except Exception`` in a client library's poll loop swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """While the body runs, SIGTERM raises ``Terminated`` (in the main thread, the only
    one that receives signals); a second SIGTERM after the first is ignored, so the
    clean-up that follows gets done. The previous handler is restored on exit. Outside the
    main thread (no handler can be installed there) the body runs unguarded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # None: a handler not installed from Python; the default is the closest.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextmanager
def cancel_on_exit(
    cancel: Callable[[], bool],
    what: str | Callable[[], str],
    error: Callable[[str], Exception],
) -> Iterator[None]:
    """Guard the wait for a cloud job (``what``: e.g. ``Dataflow job x (id)``, or a
    function that says it, once the job has an id).

    If the body exits by an exception, ``cancel()`` is called first: it sends the job's
    cancel request and returns True, or returns False when there is nothing to cancel (no
    job submitted yet, or the job already ended). SIGTERM during the body becomes
    ``error(message)`` raised from ``Terminated``; other exceptions propagate unchanged
    after the cancel. A cancel that fails is logged, never raised over the original error.
    """
    with raise_on_sigterm():
        try:
            yield
        except Terminated as exc:
            what = what() if callable(what) else what
            outcome = _cancel(cancel, what)  # (further SIGTERMs are ignored by now)
            raise error(
                f"{what}: the step was terminated ({exc}: node reclaimed, run stopped or "
                f"retried) while waiting for the job; {outcome}"
            ) from exc
        except BaseException:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cancel get out
            _cancel(cancel, what() if callable(what) else what)
            raise


def _cancel(cancel: Callable[[], bool], what: str) -> str:
    try:
        sent = cancel()
    except Exception as exc:  # the original error matters more: log, go on
        log.error("%s: could not be cancelled, cancel it in the console: %s", what, exc)
        return f"cancelling it failed ({exc}): cancel it in the console"
    if sent:
        log.warning("%s: cancel requested, the step is exiting", what)
        return "its cancellation was requested"
    return "no job was running, nothing to cancel"
