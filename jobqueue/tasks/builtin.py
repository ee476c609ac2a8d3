"""Built-in tasks for demos, smoke tests and benchmarks. None of them can harm
the deployment that runs them (no exits, no unbounded sleeps)."""

from __future__ import annotations

import time
from typing import Any

from ..errors import Permanent
from .registry import task

MAX_SLEEP_SECONDS = 900.0


@task(name="echo")
def echo(**payload: Any) -> dict[str, Any]:
    """Return the payload: the simplest proof that a job ran."""
    return payload


@task(name="noop")
def noop(**_: Any) -> None:
    """Do nothing: measures the queue's own cost per job."""


@task(name="sleep")
def sleep(seconds: float = 1.0, **_: Any) -> dict[str, float]:
    """Sleep, to show timeouts and the time budget at work."""
    seconds = min(max(float(seconds), 0.0), MAX_SLEEP_SECONDS)
    time.sleep(seconds)
    return {"slept": seconds}


@task(name="fail")
def fail(message: str = "failed on purpose", permanent: bool = False, **_: Any) -> None:
    """Always fail: retried with backoff, or at once when ``permanent``."""
    if permanent:
        raise Permanent(message)
    raise RuntimeError(message)
