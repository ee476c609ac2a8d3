"""Structured logs: one JSON object per line on stderr, which CloudWatch keeps
as it is and Logs Insights can query field by field."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_threshold = LEVELS.get(os.environ.get("JOBQUEUE_LOG_LEVEL", "INFO").upper(), 20)


def set_level(level: str) -> None:
    global _threshold
    _threshold = LEVELS[level.upper()]


def enabled(level: str) -> bool:
    return LEVELS[level] >= _threshold


def emit(level: str, event: str, **fields: Any) -> None:
    if LEVELS[level] < _threshold:
        return
    record = {"time": _now(), "level": level, "event": event, **fields}
    sys.stderr.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")


def debug(event: str, **fields: Any) -> None:
    emit("DEBUG", event, **fields)


def info(event: str, **fields: Any) -> None:
    emit("INFO", event, **fields)


def warning(event: str, **fields: Any) -> None:
    emit("WARNING", event, **fields)


def error(event: str, **fields: Any) -> None:
    emit("ERROR", event, **fields)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
