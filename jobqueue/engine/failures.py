"""How a job's failure is recorded: the backoff before its retry, the entry
kept in its error history, and results and messages made storable.

Whatever a task raises or returns, what is written must be JSON that jsonb
accepts, must show nothing of the server it ran on, and must be bounded (the
sizes are in ``rules``): a job too large for one Lambda response could never
be read again, by the API or the dashboard.
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
from ..rules import MAX_ERROR_MESSAGE_BYTES, MAX_TRACEBACK_BYTES, json_storable

# Bytes a cut text keeps back for its marker (" … [9,223,372,036,854,775,807 more bytes cut]").
_MARKER_ROOM = 64
_FILE = re.compile(r'File "(/[^"]*)"')


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


def oversized(text: str, limit: int) -> int | None:
    """The size of ``text`` in UTF-8 bytes when it is over ``limit``, else None.

    It runs on every result, so for ASCII text (str.isascii reads a flag) it is a
    length, and text is encoded only when its length in characters cannot settle it.
    """
    size = len(text)
    if size * 4 > limit and not text.isascii():
        size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def clean(text: str) -> str:
    """Text jsonb can store: no NUL, no lone surrogates (an error message may hold either)."""
    text = text.replace("\x00", "\ufffd")
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def bounded(text: str, limit: int) -> str:
    """``text`` made storable and at most ``limit`` UTF-8 bytes long: whole when it
    fits, else its start and a marker saying how many bytes were cut."""
    text = clean(text)
    if text.isascii() and len(text) <= limit:
        return text
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    front = data[: limit - _MARKER_ROOM].decode("utf-8", "ignore")  # "ignore": a character cut in two goes
    return f"{front} … [{len(data) - len(front.encode('utf-8')):,} more bytes cut]"


def traceback_text(exc: BaseException) -> str:
    """The traceback as Python prints it, within MAX_TRACEBACK_BYTES, each file
    named relative to the sys.path entry it was imported from
    (jobqueue/engine/drain.py, mytasks.py), never by the server's paths: the API
    returns it.

    Each part (a frame, the exception's message) is cut on its own first, so a
    huge message cannot crowd out the frames; then, if the whole is still too
    long (a deep recursion), whole parts go from its middle: its start says
    where the run began, its end where it failed.
    """
    roots = sorted({os.path.join(os.path.abspath(p), "") for p in sys.path}, key=len, reverse=True)

    def relative(match: re.Match[str]) -> str:
        path = match.group(1)
        root = next((r for r in roots if path.startswith(r)), None)
        name = path[len(root) :] if root else os.path.basename(path)
        return f'File "{name}"'

    def cut_part(part: str) -> str:
        piece = bounded(part, MAX_ERROR_MESSAGE_BYTES)
        if part.endswith("\n") and not piece.endswith("\n"):
            piece += "\n"  # the next part starts on a line of its own, cut or not
        return _FILE.sub(relative, piece)

    parts = [cut_part(part) for part in traceback.TracebackException.from_exception(exc, compact=True).format()]
    sizes = [len(part.encode("utf-8")) for part in parts]
    if sum(sizes) <= MAX_TRACEBACK_BYTES:
        return "".join(parts)
    room = MAX_TRACEBACK_BYTES - _MARKER_ROOM
    first = kept = 0
    while kept + sizes[first] <= room // 4:
        kept += sizes[first]
        first += 1
    last = len(parts)
    while kept + sizes[last - 1] <= room:
        last -= 1
        kept += sizes[last]
    return f"{''.join(parts[:first])}[… {sum(sizes) - kept:,} bytes cut …]\n{''.join(parts[last:])}"


def error_entry(exc: BaseException, attempt: int) -> dict[str, Any]:
    """What the job's error history keeps of a failed attempt, within the bounds
    of ``rules`` however long the task's message or traceback."""
    if isinstance(exc, JobTimeout):
        kind, message = "JobTimeout", "job exceeded its timeout"
    elif isinstance(exc, UnknownTask):
        kind, message = "UnknownTask", f"{exc.message} (is its module in JOBQUEUE_TASK_MODULES?)"
    else:
        kind, message = type(exc).__name__, str(exc)
    return {
        "attempt": attempt,
        "at": datetime.now(timezone.utc).isoformat(),
        "type": kind,
        "message": bounded(message, MAX_ERROR_MESSAGE_BYTES),
        "traceback": traceback_text(exc),
    }
