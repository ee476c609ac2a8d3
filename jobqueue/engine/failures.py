"""How a job's failure is recorded: the backoff before its retry, the entry
kept in its error history, and results and messages made storable.

Whatever a task raises or returns, what is written must be JSON that jsonb
accepts, and must show nothing of the server it ran on.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import traceback
from datetime import datetime, timezone
from typing import Any

from ..errors import JobTimeout, UnknownTask
from ..rules import json_storable


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with 'equal jitter': in [d/2, d] for d = base * 2^(attempt-1).

    Half the delay is kept so retries never pile up at once; half is random so
    a burst of failures spreads out instead of retrying in lockstep.
    """
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def result_json(result: Any) -> str | None:
    """The result as JSON that jsonb accepts, or None when there is no such JSON."""
    try:
        text = json.dumps(result, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if json_storable(text) else None


def clean(text: str) -> str:
    """Text jsonb can store: no NUL, no lone surrogates (an error message may hold either)."""
    text = text.replace("\x00", "\ufffd")
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def error_entry(exc: BaseException, attempt: int) -> dict[str, Any]:
    if isinstance(exc, JobTimeout):
        kind, message = "JobTimeout", "job exceeded its timeout"
    elif isinstance(exc, UnknownTask):
        kind, message = "UnknownTask", f"{exc.message} (is its module in JOBQUEUE_TASK_MODULES?)"
    else:
        kind, message = type(exc).__name__, str(exc)
    # The API returns tracebacks: name each file relative to the sys.path entry it
    # was imported from (jobqueue/engine/drain.py, mytasks.py), never the server's paths.
    roots = sorted({os.path.join(os.path.abspath(p), "") for p in sys.path}, key=len, reverse=True)

    def relative(match: re.Match[str]) -> str:
        path = match.group(1)
        root = next((r for r in roots if path.startswith(r)), None)
        shown = path[len(root) :] if root else os.path.basename(path)
        return f'File "{shown}"'

    text = "".join(traceback.format_exception(exc))
    return {
        "attempt": attempt,
        "at": datetime.now(timezone.utc).isoformat(),
        "type": kind,
        "message": clean(message[:2000]),
        "traceback": clean(re.sub(r'File "(/[^"]*)"', relative, text)[-4000:]),
    }
