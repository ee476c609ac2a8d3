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

from ..config import Settings

_function: str | None = None
_settings: Settings | None = None
_largest_budget: float | None = None


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
        _largest_budget = max(_largest_budget or 0.0, remaining)


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
