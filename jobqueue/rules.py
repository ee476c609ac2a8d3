"""The bounds and checks every layer shares, written once.

A submit over HTTP, a job from Python code, a task's own defaults, a periodic
declaration and a queue's settings are all held to these same rules, with the
same message for the same mistake. Each check raises ValidationError naming
the field (``jobs[3].queue``, ``rate.limit``), so a client can fix it; the API
document states the same bounds, from here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
QUEUE_NAME_RULE = "1 to 100 letters, digits and _ . : -"

# A job's options: a task's defaults and a submit's fields alike.
MAX_PRIORITY = 32767
MAX_ATTEMPTS = 100
MAX_TIMEOUT_SECONDS = 900.0  # Lambda's own ceiling
# A job whose submit and task name no timeout runs for this long, or for its
# drain's whole budget when the function's timeout leaves less (it is stored
# as NULL; see jobqueue_timeout in store/sql/migrations/0006_fitting_timeouts.sql).
DEFAULT_TIMEOUT = 30.0
MIN_TIMEOUT_SECONDS = 0.001
MAX_DELAY_SECONDS = 366 * 86400.0
MAX_KEY_LENGTH = 255
MAX_TASK_LENGTH = 200
MAX_BATCH = 1000  # jobs in one batch submit
# A JSON body nested deeper than this is refused before it reaches any
# recursive code (json encoders, PostgreSQL's jsonb parser).
MAX_JSON_DEPTH = 64

# What a job keeps of its runs, in UTF-8 bytes, so that it reads back in one
# Lambda response (6 MB): its result (JOBQUEUE_MAX_RESULT_BYTES: 256 KiB by
# default, like a submit's body, and at most MAX_RESULT_BYTES, which escaping
# in the response makes 3.7 MB at worst), and each attempt's error message and
# traceback, cut beyond these with a marker saying how much was cut. A job
# keeps one such error per attempt (and per retry an operator grants): a job
# whose MAX_ATTEMPTS attempts all failed at full size reads back as 2.6 MB.
MAX_RESULT_BYTES = 1024 * 1024
MAX_ERROR_MESSAGE_BYTES = 8 * 1024
MAX_TRACEBACK_BYTES = 16 * 1024

# Lists and drains.
MAX_FILTER_LENGTH = 200
MAX_PAGE = 500
MAX_DRAIN_JOBS = 1_000_000
MAX_DRAIN_QUEUES = 100
# Drains starting drains: a chain stops here, well inside Lambda's recursive-loop limit of 16.
MAX_HOPS = 10

# Upper bounds of queue settings: far above any real need, low enough that a
# typo (a timestamp pasted as a limit) is refused rather than stored.
MAX_QUEUE_CONCURRENCY = 100_000
MAX_RATE_LIMIT = 1_000_000
MIN_RATE_SECONDS = 0.001
MAX_RATE_SECONDS = 7 * 86400

# A UUID as RFC 9562 writes it, the form the API document's "uuid" format names
# (uuid.UUID alone would also take braces, "urn:uuid:" and bare hex).
UUID_TEXT = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# A JSON-escaped NUL (\u0000 preceded by an even number of backslashes).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _label(field: str) -> str:
    """The field's own name in a message: ``priority`` for ``jobs[3].priority``."""
    return field.rsplit(".", 1)[-1]


def only(
    data: Mapping[str, Any],
    allowed: frozenset[str] | set[str],
    *,
    prefix: str = "",
    noun: str = "field",
    expected: bool = False,
) -> None:
    """Refuse any key not in ``allowed``, naming the first in sorted order (the
    same one every time); ``prefix`` places it (``rate.``, ``jobs[3].``)."""
    if allowed.issuperset(data):
        return
    name = sorted(str(key) for key in data if key not in allowed)[0][:100]
    where = f" in {prefix.rstrip('.')}" if prefix else ""
    hint = f"; expected {', '.join(sorted(allowed))}" if expected else ""
    raise ValidationError(f"unknown {noun} {name!r}{where}{hint}", field=prefix + name)


def queue_name(value: Any, field: str = "queue") -> str:
    if not isinstance(value, str) or not QUEUE_NAME.fullmatch(value):
        raise ValidationError(f"{_label(field)} must be a queue name: {QUEUE_NAME_RULE}", field=field)
    return value


def whole_number(value: Any, field: str, lo: int, hi: int) -> int:
    """An integer as JSON Schema counts them: 8923 and 8923.0 alike (JSON has one
    number type), not 8923.5, not true."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{_label(field)} must be an integer", field=field)
    if not lo <= value <= hi:
        raise ValidationError(f"{_label(field)} must be between {lo} and {hi}", field=field)
    return value


def number(value: Any, field: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{_label(field)} must be a number", field=field)
    if not lo <= value <= hi:
        raise ValidationError(f"{_label(field)} must be between {lo:g} and {hi:g}", field=field)
    return float(value)


def priority(value: Any, field: str = "priority") -> int:
    return whole_number(value, field, -MAX_PRIORITY, MAX_PRIORITY)


def max_attempts(value: Any, field: str = "max_attempts") -> int:
    return whole_number(value, field, 1, MAX_ATTEMPTS)


def timeout_seconds(value: Any, field: str = "timeout_seconds") -> float:
    return number(value, field, MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)


def text(value: Any, field: str, max_length: int) -> str:
    """Text of 1 to ``max_length`` characters that PostgreSQL can store."""
    if not isinstance(value, str):
        raise ValidationError(f"{_label(field)} must be a string", field=field)
    if not 1 <= len(value) <= max_length:
        raise ValidationError(f"{_label(field)} must be 1 to {max_length} characters", field=field)
    if "\x00" in value or not utf8(value):
        raise ValidationError(f"{_label(field)} must not contain NUL characters or unpaired surrogates", field=field)
    return value


def idempotency_key(value: Any, field: str = "idempotency_key") -> str:
    """A valid idempotency key (1 to 255 characters PostgreSQL can store), or ValidationError."""
    return text(value, field, MAX_KEY_LENGTH)


def uuid_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not UUID_TEXT.fullmatch(value):
        raise ValidationError(f"{field} must be a UUID", field=field)
    return value


def payload_text(payload: Any, field: str) -> str:
    """The payload as JSON text; ValidationError naming ``field`` unless jsonb can store it."""
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"payload is not JSON-serialisable: {exc}", field=field) from None
    if not json_storable(text):
        raise ValidationError(
            "payload must not contain NUL characters or unpaired surrogates (PostgreSQL cannot store them)",
            field=field,
        )
    return text


def json_storable(text: str) -> bool:
    """Whether jsonb can store this JSON text: it rejects an escaped NUL."""
    return not ("\\u0000" in text and _NUL_ESCAPE.search(text)) and utf8(text)


def utf8(text: str) -> bool:
    """A lone surrogate cannot be encoded as UTF-8; pg8000 would fail mid-message
    and leave the connection unusable, so it must never reach the driver."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def due_now(job: Mapping[str, Any]) -> bool:
    """A job just stored that a drain may start at once (its times are ISO 8601
    UTC text of one format, so they compare as text)."""
    return job["run_at"] <= job["created_at"]
