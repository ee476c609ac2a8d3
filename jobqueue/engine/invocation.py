"""What Lambda told us about the invocation being handled, for the layers
below the handler that need it: which function this is (so a drain or a
submit can start more drains) and the most time any drain gets (so a job no
drain can ever fit is set aside rather than left blocking its queue).

A Lambda container handles one invocation at a time, so module state is the
natural place; the handler sets it at the start of every invocation.
"""

from __future__ import annotations

import os
from typing import Any

from .. import log
from ..config import Settings
from ..tasks import registry

# Seconds a drain keeps back after its last job so its outcome can be written in time.
RECORD_MARGIN = 0.5

_function: str | None = None
_settings: Settings | None = None
_largest_budget: float | None = None
_too_long: set[str] = set()  # tasks already reported as longer than any drain of this function


def begin(context: Any, settings: Settings) -> None:
    """Record this invocation's function and budget (``context`` may be None)."""
    global _function, _settings, _largest_budget
    _settings = settings
    arn = getattr(context, "invoked_function_arn", None)
    _function = arn if isinstance(arn, str) and arn else os.environ.get("JOBQUEUE_FUNCTION") or None
    remaining = remaining_seconds(context)
    if remaining is not None:
        # Every invocation starts with (nearly) the function's whole timeout,
        # so the largest seen is what any drain of this function gets.
        if _largest_budget is None or remaining > _largest_budget:
            _largest_budget = remaining
            _report_long_tasks(remaining, settings)


def _report_long_tasks(function_seconds: float, settings: Settings) -> None:
    """Name, once per container, each task whose declared timeout no drain of
    this function can give: its jobs would wait, set aside, until the
    function's timeout is raised. Said at the first invocation, since only
    Lambda's context tells the function's timeout."""
    margin = settings.drain_safety_ms / 1000 + RECORD_MARGIN
    for name, task in registry.registered().items():
        if task.timeout is None or name in _too_long or task.timeout + margin <= function_seconds:
            continue
        _too_long.add(name)
        log.warning(
            "task_timeout_exceeds_function",
            task=name,
            timeout_seconds=task.timeout,
            function_timeout_seconds=round(function_seconds, 1),
            needs_function_timeout_seconds=int(task.timeout + margin) + 1,
            message=f"task {name} declares a {task.timeout:g} s timeout, longer than any drain of this function "
            "can give: its jobs wait, set aside, until the function's timeout is raised to the figure given "
            "or the task's timeout lowered",
        )


def remaining_seconds(context: Any) -> float | None:
    """The invocation's time left, from Lambda's context (None without one)."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return None if getter is None else getter() / 1000


def function() -> str | None:
    """The function to invoke for more drains: this one, or JOBQUEUE_FUNCTION outside Lambda."""
    return _function or os.environ.get("JOBQUEUE_FUNCTION") or None


def settings() -> Settings | None:
    return _settings


def budget_cap() -> float | None:
    """The whole budget of a drain of this function, once an invocation has shown it."""
    return _largest_budget


def reset() -> None:
    """Forget everything (tests)."""
    global _function, _settings, _largest_budget
    _function = _settings = _largest_budget = None
    _too_long.clear()
