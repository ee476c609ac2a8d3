"""Structured logs: one JSON object per line on stderr, which CloudWatch keeps
as it is and Logs Insights can query field by field."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_threshold = LEVELS.get(os.environ.get("JOBQUEUE_LOG_LEVEL", "INFO").upper(), 20)


def set_level(level: str) -> None:
    global _threshold
    _threshold = LEVELS[level.upper()]


def enabled(level: str) -> bool:
    return LEVELS[level] >= _threshold


def _make_dumps() -> Callable[[Any], str]:
    """Compact ASCII JSON with ``default=str``, its C encoder built once.

    ``json.dumps`` with options, and ``JSONEncoder.encode`` too, build a new
    encoder on every call; logs (a line per request) and the HTTP responses
    use this instead. Values are trees of plain data: no cycle check.
    """
    from json import encoder

    portable = json.JSONEncoder(default=str, separators=(",", ":")).encode
    if encoder.c_make_encoder is None:
        return portable
    try:
        fast = encoder.c_make_encoder(None, str, encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
        fast({"probe": [1.5, None, True]}, 0)
    except Exception:  # noqa: BLE001 - another interpreter: the portable way then
        return portable
    return lambda value: "".join(fast(value, 0))


dumps = _make_dumps()


def emit(level: str, event: str, **fields: Any) -> None:
    if LEVELS[level] < _threshold:
        return
    record = {"time": _now(), "level": level, "event": event, **fields}
    sys.stderr.write(dumps(record) + "\n")


# Partials rather than wrappers: one call and one packing of the fields less
# for the line the API writes on every request.
debug: Callable[..., None] = functools.partial(emit, "DEBUG")
info: Callable[..., None] = functools.partial(emit, "INFO")
warning: Callable[..., None] = functools.partial(emit, "WARNING")
error: Callable[..., None] = functools.partial(emit, "ERROR")


_stamp_second = -1
_stamp = ""


def _now() -> str:
    """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second."""
    global _stamp_second, _stamp
    t = time.time()
    second = int(t)
    if second != _stamp_second:
        _stamp_second, _stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_stamp}.{int(t % 1 * 1000):03d}Z"
