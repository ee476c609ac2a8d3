"""Per-job timeouts.

In the main thread (as a Lambda handler runs) a real-time interval timer
raises JobTimeout inside the task, which interrupts Python code and blocking
calls alike, so the worker moves on and records the timeout. Elsewhere
(threads) signals cannot be used; the task runs in a helper thread that is
abandoned at the deadline, which is the best Python allows there.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import JobTimeout


class _Alarm:
    """One real-time timer for a drain's run of jobs, armed lazily.

    A timer set and cleared around every job costs two system calls per job,
    a noticeable share of a no-op job's cost. Instead each job only records
    its deadline; the timer is armed when it would otherwise fire too late,
    and when it fires early (for an earlier job's deadline) the handler
    re-arms it for the job running now rather than interrupting it.
    """

    def __init__(self) -> None:
        self.deadline: float | None = None  # of the job running now
        self.armed: float | None = None  # when the timer fires

    def handler(self, signum: int, frame: Any) -> None:
        self.armed = None
        deadline = self.deadline
        if deadline is None:
            return  # between jobs: nothing to interrupt
        left = deadline - time.monotonic()
        if left <= 0:
            raise JobTimeout("job exceeded its timeout")
        self._arm(deadline, left)

    def _arm(self, deadline: float, seconds: float) -> None:
        self.armed = deadline
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-6))

    def call(self, func: Callable[..., Any], kwargs: dict[str, Any], seconds: float) -> Any:
        deadline = time.monotonic() + seconds
        self.deadline = deadline
        if self.armed is None or self.armed > deadline:
            self._arm(deadline, seconds)
        try:
            return func(**kwargs)
        finally:
            self.deadline = None


def signals_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def alarms() -> Iterator[Callable[[Callable[..., Any], dict[str, Any], float], Any]]:
    """Install the alarm handler once for a drain; yields ``call(func, kwargs, seconds)``."""
    if not signals_usable():
        yield _call_in_thread
        return
    alarm = _Alarm()
    previous = signal.signal(signal.SIGALRM, alarm.handler)
    try:
        yield alarm.call
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_in_thread(func: Callable[..., Any], kwargs: dict[str, Any], seconds: float) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="jobqueue-task", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise JobTimeout("job exceeded its timeout")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
