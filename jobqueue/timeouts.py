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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import JobTimeout


def _raise_timeout(signum: int, frame: Any) -> None:
    raise JobTimeout("job exceeded its timeout")


def signals_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def alarms() -> Iterator[Callable[[Callable[..., Any], dict[str, Any], float], Any]]:
    """Install the alarm handler once for a drain; yields ``call(func, kwargs, seconds)``."""
    if not signals_usable():
        yield _call_in_thread
        return
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    try:
        yield _call_with_alarm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_with_alarm(func: Callable[..., Any], kwargs: dict[str, Any], seconds: float) -> Any:
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return func(**kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


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
