"""Built-in tasks for demos, smoke tests and benchmarks. None of them can harm
the deployment that runs them (no exits, no unbounded sleeps).

They are registered only when asked for (JOBQUEUE_BUILTIN_TASKS=on; ``serve``
and the test suite turn it on): a deployment should accept only the tasks it
means to run, and ``fail`` or ``sleep`` submitted by anyone holding a token
would otherwise be work, and alarms, that nobody asked for. Importing this
module registers nothing; ``register`` does.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import Permanent
from .registry import task

MAX_SLEEP_SECONDS = 900.0


def echo(**payload: Any) -> dict[str, Any]:
    """Return the payload: the simplest proof that a job ran."""
    return payload


def noop(**_: Any) -> None:
    """Do nothing: measures the queue's own cost per job."""


def sleep(seconds: float = 1.0, **_: Any) -> dict[str, float]:
    """Sleep, to show timeouts and the time budget at work."""
    seconds = min(max(float(seconds), 0.0), MAX_SLEEP_SECONDS)
    time.sleep(seconds)
    return {"slept": seconds}


def fail(message: str = "failed on purpose", permanent: bool = False, **_: Any) -> None:
    """Always fail: retried with backoff, or at once when ``permanent``."""
    if permanent:
        raise Permanent(message)
    raise RuntimeError(message)


BUILTIN = {"echo": echo, "noop": noop, "sleep": sleep, "fail": fail}


def register() -> None:
    """Register the built-ins under their short names (again: a no-op)."""
    for name, func in BUILTIN.items():
        task(name=name)(func)
